package dstest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// webhookSigner signs deliveries with an Ed25519 key (PROTOCOL.md 6.5, 7.1).
type webhookSigner struct {
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	kid  string // "ds_" and the key's RFC 7638 JWK thumbprint
	jwks []byte // the JWK Set served at the JWKS route
}

// jwk is a public Ed25519 key as a JSON Web Key.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	KID string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	X   string `json:"x"`
}

func newWebhookSigner(key ed25519.PrivateKey) *webhookSigner {
	if key == nil {
		_, key, _ = ed25519.GenerateKey(nil) // crypto/rand
	}
	pub := key.Public().(ed25519.PublicKey)
	x := base64.RawURLEncoding.EncodeToString(pub)
	// The thumbprint hashes the required members in lexicographic order, without spaces.
	sum := sha256.Sum256([]byte(`{"crv":"` + protocol.JWKCurveEd25519 + `","kty":"` + protocol.JWKKeyTypeOKP + `","x":"` + x + `"}`))
	s := &webhookSigner{key: key, pub: pub, kid: protocol.KeyIDPrefix + base64.RawURLEncoding.EncodeToString(sum[:])}
	s.jwks, _ = json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{[]jwk{{Kty: protocol.JWKKeyTypeOKP, Crv: protocol.JWKCurveEd25519, KID: s.kid,
		Use: protocol.JWKUseSignature, Alg: protocol.JWKAlgEdDSA, X: x}}})
	return s
}

// signature returns the Webhook-Signature header of body sent at now:
// t=<unix seconds>,kid=<kid>,ed25519=<base64url signature of "<t>.<body>", unpadded>.
func (s *webhookSigner) signature(body []byte, now time.Time) string {
	t := strconv.FormatInt(now.Unix(), 10)
	msg := make([]byte, 0, len(t)+1+len(body))
	msg = append(append(append(msg, t...), '.'), body...)
	sig := ed25519.Sign(s.key, msg)
	return protocol.SignatureTimestamp + "=" + t + "," + protocol.SignatureKeyID + "=" + s.kid + "," +
		protocol.SignatureEd25519 + "=" + base64.RawURLEncoding.EncodeToString(sig)
}

// WebhookKey returns the key id and the public key that sign the handler's webhook
// deliveries (also served as a JWK Set at Prefix + "__ds/jwks.json"), so that tests can
// verify signatures without fetching the JWKS.
func (h *Handler) WebhookKey() (kid string, key ed25519.PublicKey) {
	return h.subs.signer.kid, h.subs.signer.pub
}

// checkWebhookURL validates a webhook URL against server-side request forgery (PROTOCOL.md
// 6.2, 12.8) as the reference server does: https to a public host, or plain http to
// localhost or 127.x.x.x for development. It returns what is wrong, or "".
func checkWebhookURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "webhook.url must be a valid absolute URL"
	}
	host := strings.ToLower(u.Hostname())
	ip, ipErr := netip.ParseAddr(host)
	switch u.Scheme {
	case "http":
		if host == "localhost" || (ipErr == nil && ip.Is4() && ip.As4()[0] == 127) {
			return ""
		}
		return "http webhook URLs are only allowed for localhost or 127.0.0.x"
	case "https":
	default:
		return "webhook.url must use https"
	}
	switch {
	case host == "localhost":
		return "localhost webhook URLs must use http for development"
	case ipErr != nil:
		return ""
	case ip.Is6() && !ip.Is4In6():
		return "IPv6 webhook hosts are not accepted"
	}
	ip = ip.Unmap()
	cgnat := netip.MustParsePrefix("100.64.0.0/10")
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() ||
		ip.IsMulticast() || ip.As4()[0] == 0 || cgnat.Contains(ip) {
		return "webhook.url must not target private, loopback or link-local hosts"
	}
	return ""
}

// webhookPayload is the body of a delivery (PROTOCOL.md 7.1).
type webhookPayload struct {
	SubscriptionID string       `json:"subscription_id"`
	WakeID         string       `json:"wake_id"`
	Generation     int64        `json:"generation"`
	Streams        []streamInfo `json:"streams"`
	CallbackURL    string       `json:"callback_url"`
	CallbackToken  string       `json:"callback_token"`
}

// A delivery is one webhook POST of a wake.
type delivery struct {
	sub    *subscription
	wakeID string
	url    string
	body   []byte
}

// subscriptionURL returns the absolute URL of a subscription's route, action "" for the
// subscription itself.
func (h *Handler) subscriptionURL(sub *subscription, action string) string {
	u := sub.base + h.opts.Prefix + protocol.SubscriptionsRoute + url.PathEscape(sub.id)
	if action != "" {
		u += "/" + action
	}
	return u
}

// deliveryLocked builds the delivery of sub's current wake. The caller holds subs.mu.
func (h *Handler) deliveryLocked(sub *subscription) delivery {
	body, _ := json.Marshal(webhookPayload{
		SubscriptionID: sub.id, WakeID: sub.wakeID, Generation: sub.generation,
		Streams:       h.infosLocked(sub),
		CallbackURL:   h.subscriptionURL(sub, protocol.SubscriptionCallback),
		CallbackToken: sub.token,
	})
	return delivery{sub: sub, wakeID: sub.wakeID, url: sub.cfg.webhookURL, body: body}
}

// deliverLocked delivers sub's current wake: at once, or when the delivery in flight ends,
// or at the retry already scheduled. At most one delivery of a subscription is in flight.
// The caller holds subs.mu.
func (h *Handler) deliverLocked(sub *subscription) {
	switch {
	case h.subs.closed || sub.retry != nil:
	case sub.delivering:
		sub.redeliver = true
	default:
		sub.delivering = true
		d := h.deliveryLocked(sub)
		h.subs.working.Add(1)
		go h.runDeliveries(d)
	}
}

// runDeliveries sends d, applies its outcome, and sends the subscription's next wake when
// one was issued meanwhile.
func (h *Handler) runDeliveries(d delivery) {
	ss := &h.subs
	defer ss.working.Done()
	for {
		ok, done := h.post(d)
		ss.mu.Lock()
		sub := d.sub
		sub.delivering = false
		if sub.deleted || ss.closed {
			ss.mu.Unlock()
			return
		}
		if ok {
			sub.failed, sub.attempts = false, 0
			if done && sub.wakeID == d.wakeID {
				// {"done":true}: the wake's snapshot is acked and the lease released.
				for path, tail := range sub.snapshot {
					if l := sub.links[path]; l != nil && tail > l.acked {
						l.acked = tail
					}
				}
				sub.endWakeLocked()
				h.nextWakeLocked(sub)
			}
		} else {
			h.scheduleRetryLocked(sub)
		}
		again := sub.redeliver && !sub.delivering && sub.retry == nil && sub.wakeID != ""
		sub.redeliver = false
		if !again {
			ss.mu.Unlock()
			return
		}
		sub.delivering = true
		d = h.deliveryLocked(sub)
		ss.mu.Unlock()
	}
}

// scheduleRetryLocked schedules the next attempt after a failed one: WebhookRetryMin after
// the first failure, doubling up to WebhookRetryMax, each varied by up to 20% either way.
// The retry delivers whatever wake is current then. The caller holds subs.mu.
func (h *Handler) scheduleRetryLocked(sub *subscription) {
	sub.attempts++
	d := h.opts.WebhookRetryMin
	for i := 1; i < sub.attempts && d < h.opts.WebhookRetryMax; i++ {
		d *= 2
	}
	d = min(d, h.opts.WebhookRetryMax)
	d = time.Duration(float64(d) * (1 + protocol.WebhookRetryJitter*(2*rand.Float64()-1)))
	sub.failed = true
	sub.nextAttempt = time.Now().Add(d)
	if sub.retry != nil {
		sub.retry.Stop()
	}
	sub.retrySeq++
	seq := sub.retrySeq
	sub.retry = time.AfterFunc(d, func() {
		ss := &h.subs
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if sub.deleted || ss.closed || sub.retrySeq != seq {
			return
		}
		sub.retry = nil
		if sub.wakeID == "" {
			sub.failed = false // nothing left to deliver
			return
		}
		h.deliverLocked(sub)
	})
}

// webhookFaultKey is the fault-table key of a subscription's deliveries (paths start with
// "/", so it cannot collide with one).
func webhookFaultKey(id string) string { return "webhook:" + id }

// maxWebhookAnswer is the most of a receiver's answer that is read.
const maxWebhookAnswer = 1 << 20

// post sends one delivery and reports whether the receiver answered 2xx, and whether its
// answer was {"done":true}. An injected fault acts first.
func (h *Handler) post(d delivery) (ok, done bool) {
	ss := &h.subs
	ctx, cancel := context.WithTimeout(ss.ctx, h.opts.WebhookTimeout)
	defer cancel()
	f, faulted := h.faults.take(webhookFaultKey(d.sub.id), http.MethodPost)
	if faulted && f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, false
		}
	}
	switch {
	case faulted && f.Drop:
		h.warnDelivery(d, "injected fault: dropped before sending")
		return false, false
	case faulted && f.Status != 0:
		if f.Status/100 != 2 {
			h.warnDelivery(d, "injected fault: status "+strconv.Itoa(f.Status))
		}
		return f.Status/100 == 2, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		h.warnDelivery(d, err.Error())
		return false, false
	}
	req.Header.Set(protocol.HeaderContentType, protocol.ContentTypeJSON)
	req.Header.Set(protocol.HeaderWebhookSignature, ss.signer.signature(d.body, time.Now()))
	resp, err := ss.client.Do(req)
	if err != nil {
		h.warnDelivery(d, err.Error())
		return false, false
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookAnswer))
	resp.Body.Close()
	switch {
	case faulted && f.DropMidBody:
		h.warnDelivery(d, "injected fault: the receiver's answer was lost")
		return false, false
	case resp.StatusCode/100 != 2:
		h.warnDelivery(d, "status "+strconv.Itoa(resp.StatusCode))
		return false, false
	case err != nil:
		h.warnDelivery(d, "reading the answer: "+err.Error())
		return false, false
	}
	var a map[string]json.RawMessage
	json.Unmarshal(answer, &a) // an answer that is not {"done":true} leaves the wake to a callback
	return true, string(a[protocol.WebhookDone]) == "true"
}

func (h *Handler) warnDelivery(d delivery, why string) {
	h.warn("webhook delivery failed", slog.String("subscription", d.sub.id),
		slog.String("wake_id", d.wakeID), slog.String("url", d.url), slog.String("error", why))
}
