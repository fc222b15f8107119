package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
)

// reasonRule is the Reason of every verdict that came from the rule's own
// answer (as opposed to an error, a timeout or the absence of a rule).
const reasonRule = "rule"

// serdeMaxDepth is serde_json's recursion limit: httpjail parses results
// with serde_json, which fails (and so denies with the whole text as the
// message) on nesting this deep in the parts it decodes recursively.
const serdeMaxDepth = 128

var (
	allowVerdict = Verdict{Allow: true, Reason: reasonRule}
	denyVerdict  = Verdict{Reason: reasonRule}
)

// ParseResult turns a rule's textual answer into a Verdict exactly as
// httpjail's RuleResponse::from_string and to_evaluation_result do, so that
// a rule gives the same decision whichever engine runs it:
//
//   - the text is trimmed; "true" allows and "false" denies;
//   - otherwise it is decoded as JSON {allow?: bool | {max_tx_bytes: u64},
//     deny_message?: string} (unknown keys are ignored, null counts as
//     absent, a duplicated known key is an error, and like serde the
//     two-element array form [allow, deny_message] is accepted);
//   - text that does not decode that way denies, with the whole trimmed text
//     as the message (so {"allow":"yes"} denies with message {"allow":"yes"});
//   - allow true or {max_tx_bytes} allows and drops the message; allow false
//     denies with the message if any; no allow but a message denies; neither
//     allows (so {} and {"foo":1} allow, as in httpjail).
//
// max_tx_bytes 0 cannot be expressed in Verdict (0 means no limit there), so
// it becomes a limit of 1 byte: nothing fits, which is what 0 asked for.
// Limits above math.MaxInt64 are clamped to it.
func ParseResult(text string) Verdict {
	t := strings.TrimSpace(text)
	switch t {
	case "true":
		return allowVerdict
	case "false":
		return denyVerdict
	}
	resp, err := decodeResponse(t)
	if err != nil {
		return Verdict{DenyMessage: t, Reason: reasonRule}
	}
	switch {
	case resp.limited:
		return Verdict{Allow: true, MaxTxBytes: clampTxBytes(resp.maxTxBytes), Reason: reasonRule}
	case resp.hasAllow && resp.allow:
		return allowVerdict
	case resp.hasAllow || resp.hasMessage:
		return Verdict{DenyMessage: resp.message, Reason: reasonRule}
	default:
		return allowVerdict
	}
}

func clampTxBytes(n uint64) int64 {
	switch {
	case n == 0:
		return 1
	case n > math.MaxInt64:
		return math.MaxInt64
	default:
		return int64(n)
	}
}

// ruleResponse is httpjail's RuleResponse: which fields were present and
// what they said.
type ruleResponse struct {
	hasAllow   bool // allow present and not null
	allow      bool
	limited    bool // allow was {max_tx_bytes: N}
	maxTxBytes uint64
	hasMessage bool // deny_message present and not null
	message    string
}

var errBadResponse = errors.New("not a rule response")

// decodeResponse mirrors serde's derived Deserialize for RuleResponse,
// including the corners where encoding/json would be laxer: exact
// (case-sensitive) key names, duplicate known keys rejected, nothing after
// the value, lone UTF-16 surrogates rejected.
func decodeResponse(t string) (ruleResponse, error) {
	var resp ruleResponse
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return resp, err
	}
	switch tok {
	case json.Delim('{'):
		err = resp.decodeFields(dec, t)
	case json.Delim('['):
		err = resp.decodeSequence(dec)
	default:
		err = errBadResponse
	}
	if err != nil {
		return resp, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return resp, errBadResponse // trailing data, even another JSON value
	}
	return resp, nil
}

// decodeFields decodes the object form, after its '{', from dec reading t.
func (resp *ruleResponse) decodeFields(dec *json.Decoder, t string) error {
	var seenAllow, seenMessage bool
	for dec.More() {
		before := dec.InputOffset()
		keyTok, err := dec.Token()
		if err != nil {
			return err
		}
		// serde decodes (and so validates) the keys but only skips
		// the values of unknown keys.
		if !validSurrogates(t[before:dec.InputOffset()]) {
			return errBadResponse
		}
		key, _ := keyTok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		switch key {
		case "allow":
			if seenAllow {
				return errBadResponse
			}
			seenAllow = true
			if err := resp.setAllow(raw); err != nil {
				return err
			}
		case "deny_message":
			if seenMessage {
				return errBadResponse
			}
			seenMessage = true
			if err := resp.setMessage(raw); err != nil {
				return err
			}
		}
	}
	_, err := dec.Token() // the closing '}'
	return err
}

// decodeSequence decodes the sequence form, after its '[': serde lets a
// struct be written as a sequence of its fields in declaration order;
// exactly two elements are required.
func (resp *ruleResponse) decodeSequence(dec *json.Decoder) error {
	var elems [2]json.RawMessage
	for i := range elems {
		if !dec.More() {
			return errBadResponse
		}
		if err := dec.Decode(&elems[i]); err != nil {
			return err
		}
	}
	if dec.More() {
		return errBadResponse
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return err
	}
	if err := resp.setAllow(elems[0]); err != nil {
		return err
	}
	return resp.setMessage(elems[1])
}

// setAllow decodes allow: null (absent), a boolean, or an object whose
// max_tx_bytes is an unsigned integer (other keys ignored).
func (resp *ruleResponse) setAllow(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return errBadResponse
	}
	switch raw[0] {
	case 'n':
		return nil
	case 't', 'f':
		resp.hasAllow, resp.allow = true, raw[0] == 't'
		return nil
	case '{':
		if !validSurrogates(raw) {
			return errBadResponse
		}
		// httpjail decodes allow into a serde_json::Value, which recurses;
		// the response object itself is one level.
		if jsonDepth(raw)+1 >= serdeMaxDepth {
			return errBadResponse
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		n, ok := obj["max_tx_bytes"]
		if !ok {
			return errBadResponse
		}
		// serde_json's as_u64 accepts only non-negative integers written
		// without a fraction or exponent that fit in 64 bits.
		v, err := strconv.ParseUint(string(bytes.TrimSpace(n)), 10, 64)
		if err != nil {
			return err
		}
		resp.hasAllow, resp.allow, resp.limited, resp.maxTxBytes = true, true, true, v
		return nil
	default:
		return errBadResponse
	}
}

// setMessage decodes deny_message: null (absent) or a string.
func (resp *ruleResponse) setMessage(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return errBadResponse
	}
	switch raw[0] {
	case 'n':
		return nil
	case '"':
		if !validSurrogates(raw) {
			return errBadResponse
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		resp.hasMessage, resp.message = true, s
		return nil
	default:
		return errBadResponse
	}
}

// validSurrogates reports whether every \u escape for a UTF-16 surrogate in
// the JSON text s (strings and all) is part of a proper pair. serde_json rejects
// lone surrogates; encoding/json would silently turn them into U+FFFD.
func validSurrogates[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 >= len(s) || s[i+1] != 'u' {
			i++ // skip the escaped character, which may be a backslash
			continue
		}
		cp, ok := hex4(s, i+2)
		if !ok {
			return false
		}
		switch {
		case cp >= 0xDC00 && cp <= 0xDFFF:
			return false
		case cp >= 0xD800 && cp <= 0xDBFF:
			if i+7 >= len(s) || s[i+6] != '\\' || s[i+7] != 'u' {
				return false
			}
			lo, ok := hex4(s, i+8)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 11
		default:
			i += 5
		}
	}
	return true
}

func hex4[T ~string | ~[]byte](s T, at int) (int, bool) {
	if at+4 > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[at : at+4]) {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// jsonDepth returns the maximum nesting of arrays and objects in the JSON
// value raw (which encoding/json has already validated).
func jsonDepth(raw []byte) int {
	depth, maxDepth, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			maxDepth = max(maxDepth, depth)
		case '}', ']':
			depth--
		}
	}
	return maxDepth
}

type staticEngine struct{ v Verdict }

func (e staticEngine) Evaluate(context.Context, *Request) Verdict { return e.v }
func (e staticEngine) Close() error                               { return nil }

// DenyAll is the engine used when no rule flag is given: httpjail denies
// every request then, and so do we.
func DenyAll() Engine { return staticEngine{Verdict{Reason: "no rule"}} }

// AllowAll allows every request; for tests and audit-only runs.
func AllowAll() Engine { return staticEngine{Verdict{Allow: true, Reason: "allow all"}} }
