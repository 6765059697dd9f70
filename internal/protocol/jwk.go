package protocol

// JSON Web Key members of the webhook signing keys (PROTOCOL.md section 6.5; RFC 8037).
const (
	JWKKeyTypeOKP   = "OKP"     // kty of an Ed25519 key
	JWKCurveEd25519 = "Ed25519" // crv of an Ed25519 key
	JWKUseSignature = "sig"     // use of a signing key
	JWKAlgEdDSA     = "EdDSA"   // alg of an Ed25519 signing key
)

// WebhookDone is the member of a webhook response body ({"done":true}) that finishes the
// wake at once: the server acks the wake's tail offsets and releases its lease (section 7.1).
const WebhookDone = "done"
