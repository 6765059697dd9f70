package main

import "encoding/json"

// command is the union of the suite's commands (its src/protocol.ts); unused fields stay zero.
type command struct {
	Type         string            `json:"type"`
	ServerURL    string            `json:"serverUrl"`
	Path         string            `json:"path"`
	ContentType  string            `json:"contentType"`
	TTLSeconds   *int64            `json:"ttlSeconds"`
	ExpiresAt    string            `json:"expiresAt"`
	Headers      map[string]string `json:"headers"`
	Closed       bool              `json:"closed"`
	Data         *string           `json:"data"`
	Binary       bool              `json:"binary"`
	Seq          *int64            `json:"seq"`
	ProducerID   string            `json:"producerId"`
	Epoch        int64             `json:"epoch"`
	AutoClaim    bool              `json:"autoClaim"`
	Items        []string          `json:"items"`
	MaxInFlight  *int              `json:"maxInFlight"`
	Offset       *string           `json:"offset"`
	Live         json.RawMessage   `json:"live"`
	TimeoutMs    *int              `json:"timeoutMs"`
	MaxChunks    *int              `json:"maxChunks"`
	WaitUpToDate bool              `json:"waitForUpToDate"`
	Name         string            `json:"name"`
	ValueType    string            `json:"valueType"`
	InitialValue string            `json:"initialValue"`
	Target       *validateTarget   `json:"target"`
	IterationID  string            `json:"iterationId"`
	Operation    *benchOp          `json:"operation"`
}

type validateTarget struct {
	Target         string   `json:"target"`
	MaxRetries     *int     `json:"maxRetries"`
	InitialDelayMs *float64 `json:"initialDelayMs"`
	MaxDelayMs     *float64 `json:"maxDelayMs"`
	Multiplier     *float64 `json:"multiplier"`
	ProducerID     *string  `json:"producerId"`
	Epoch          *int64   `json:"epoch"`
	MaxBatchBytes  *int     `json:"maxBatchBytes"`
	MaxBatchItems  *int     `json:"maxBatchItems"`
}

type benchOp struct {
	Op            string  `json:"op"`
	Path          string  `json:"path"`
	Size          int     `json:"size"`
	Offset        *string `json:"offset"`
	Live          string  `json:"live"`
	ContentType   string  `json:"contentType"`
	Count         int     `json:"count"`
	Concurrency   int     `json:"concurrency"`
	ExpectedCount int     `json:"expectedCount"`
}

type errorResult struct {
	Type        string `json:"type"`
	Success     bool   `json:"success"`
	CommandType string `json:"commandType"`
	Status      int    `json:"status,omitempty"`
	ErrorCode   string `json:"errorCode"`
	Message     string `json:"message"`
}

type readChunk struct {
	Data   string `json:"data"`
	Binary bool   `json:"binary,omitempty"`
	Offset string `json:"offset,omitempty"`
}

// result is the union of the success results; empty fields are omitted.
type result struct {
	Type          string            `json:"type"`
	Success       bool              `json:"success"`
	Status        int               `json:"status,omitempty"`
	ClientName    string            `json:"clientName,omitempty"`
	ClientVersion string            `json:"clientVersion,omitempty"`
	Features      map[string]bool   `json:"features,omitempty"`
	Offset        *string           `json:"offset,omitempty"`
	ContentType   string            `json:"contentType,omitempty"`
	TTLSeconds    *int64            `json:"ttlSeconds,omitempty"`
	ExpiresAt     string            `json:"expiresAt,omitempty"`
	StreamClosed  *bool             `json:"streamClosed,omitempty"`
	Chunks        *[]readChunk      `json:"chunks,omitempty"`
	UpToDate      *bool             `json:"upToDate,omitempty"`
	Cursor        string            `json:"cursor,omitempty"`
	HeadersSent   map[string]string `json:"headersSent,omitempty"`
	ParamsSent    map[string]string `json:"paramsSent,omitempty"`
	Duplicate     *bool             `json:"duplicate,omitempty"`
	ProducerEpoch *int64            `json:"producerEpoch,omitempty"`
	ProducerSeq   *int64            `json:"producerSeq,omitempty"`
	FinalOffset   *string           `json:"finalOffset,omitempty"`
	IterationID   string            `json:"iterationId,omitempty"`
	DurationNs    string            `json:"durationNs,omitempty"`
	Metrics       map[string]any    `json:"metrics,omitempty"`
}

func ptr[T any](v T) *T { return &v }
