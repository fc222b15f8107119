package rules

import (
	"context"
	"math"
	"strings"
	"testing"
)

func allow() Verdict               { return Verdict{Allow: true, Reason: "rule"} }
func deny(msg string) Verdict      { return Verdict{DenyMessage: msg, Reason: "rule"} }
func allowLimit(n int64) Verdict   { return Verdict{Allow: true, MaxTxBytes: n, Reason: "rule"} }
func denyText(text string) Verdict { return deny(strings.TrimSpace(text)) }

// deep is an allow whose max_tx_bytes object nests n arrays.
func deep(n int) string {
	return `{"allow":{"max_tx_bytes":1,"x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`
}

// parseResultCases are answers a rule may give and what each means.
var parseResultCases = []struct {
	text string
	want Verdict
}{
	// httpjail's table (docs and common.rs tests).
	{"true", allow()},
	{"false", deny("")},
	{"  true  \n", allow()},
	{"\tfalse\r\n", deny("")},
	{`{"allow": true}`, allow()},
	{`{"allow": false}`, deny("")},
	{`{"allow": false, "deny_message": "blocked"}`, deny("blocked")},
	{`{"allow": true, "deny_message": "ignored"}`, allow()},
	{`{"deny_message": "not allowed"}`, deny("not allowed")},
	{`{"allow": {"max_tx_bytes": 1024}}`, allowLimit(1024)},
	{`{"allow": {"max_tx_bytes": 10485760}}`, allowLimit(10485760)},
	{`{"allow":{"max_tx_bytes":512},"deny_message":"ignored"}`, allowLimit(512)},
	{"Access denied for security reasons", deny("Access denied for security reasons")},
	{`{}`, allow()},
	{`{"foo": 1}`, allow()},
	// Any text that is not a response denies with the whole text.
	{"", deny("")},
	{"TRUE", deny("TRUE")},
	{" some text \n", deny("some text")},
	{`"true"`, deny(`"true"`)},
	{`42`, deny("42")},
	{`null`, deny("null")},
	{`{"allow": "yes"}`, denyText(`{"allow": "yes"}`)},
	{`{"allow": 1}`, denyText(`{"allow": 1}`)},
	{`{"allow": {}}`, denyText(`{"allow": {}}`)},
	{`{"allow": {"max_tx_bytes": -1}}`, denyText(`{"allow": {"max_tx_bytes": -1}}`)},
	{`{"allow": {"max_tx_bytes": 1.5}}`, denyText(`{"allow": {"max_tx_bytes": 1.5}}`)},
	{`{"allow": {"max_tx_bytes": 1e3}}`, denyText(`{"allow": {"max_tx_bytes": 1e3}}`)},
	{`{"allow": {"max_tx_bytes": "1024"}}`, denyText(`{"allow": {"max_tx_bytes": "1024"}}`)},
	{`{"allow": {"max_tx_bytes": null}}`, denyText(`{"allow": {"max_tx_bytes": null}}`)},
	{`{"allow": {"max_tx_bytes": 18446744073709551616}}`, denyText(`{"allow": {"max_tx_bytes": 18446744073709551616}}`)},
	{`{"deny_message": 5}`, denyText(`{"deny_message": 5}`)},
	{`{"allow": true,}`, denyText(`{"allow": true,}`)},
	{`{"allow": true} x`, denyText(`{"allow": true} x`)},
	{`{}{}`, denyText(`{}{}`)},
	// serde details: null is absent, keys are case-sensitive, a known
	// key may not repeat, other keys are skipped unread.
	{`{"allow": null}`, allow()},
	{`{"deny_message": null}`, allow()},
	{`{"allow": null, "deny_message": "x"}`, deny("x")},
	{`{"Allow": false}`, allow()},
	{`{"allow": true, "allow": false}`, denyText(`{"allow": true, "allow": false}`)},
	{`{"deny_message": "a", "deny_message": "b"}`, denyText(`{"deny_message": "a", "deny_message": "b"}`)},
	{`{"foo": 1, "foo": 2}`, allow()},
	{`{"allow": {"max_tx_bytes": 7, "other": [1, {"a": null}]}}`, allowLimit(7)},
	{`{"\u0061llow": false}`, deny("")},
	// serde accepts a struct as the sequence of its fields.
	{`[true, "x"]`, allow()},
	{`[false, "x"]`, deny("x")},
	{`[null, null]`, allow()},
	{`[{"max_tx_bytes": 9}, null]`, allowLimit(9)},
	{`[true]`, denyText(`[true]`)},
	{`[]`, denyText(`[]`)},
	{`[true, null, 1]`, denyText(`[true, null, 1]`)},
	// Limits Verdict cannot hold as they are.
	{`{"allow": {"max_tx_bytes": 0}}`, allowLimit(1)},
	{`{"allow": {"max_tx_bytes": 18446744073709551615}}`, allowLimit(math.MaxInt64)},
	// serde_json rejects lone surrogates in what it decodes, not in
	// what it skips.
	{`{"deny_message": "\ud83d\ude00"}`, deny("😀")},
	{`{"deny_message": "\ud800"}`, denyText(`{"deny_message": "\ud800"}`)},
	{`{"deny_message": "\udc00x"}`, denyText(`{"deny_message": "\udc00x"}`)},
	{`{"deny_message": "a\\ud800"}`, deny(`a\ud800`)},
	{`{"\ud800": 1}`, denyText(`{"\ud800": 1}`)},
	{`{"foo": "\ud800"}`, allow()},
	// serde_json's recursion limit is 128 levels.
	{deep(125), allowLimit(1)},
	{deep(126), denyText(deep(126))},
}

func TestParseResult(t *testing.T) {
	for _, tc := range parseResultCases {
		if got := ParseResult(tc.text); got != tc.want {
			t.Errorf("ParseResult(%q) = %+v, want %+v", tc.text, got, tc.want)
		}
	}
}

func TestStaticEngines(t *testing.T) {
	ctx, r := context.Background(), typicalRequest()
	for _, tc := range []struct {
		name string
		e    Engine
		want Verdict
	}{
		{"DenyAll", DenyAll(), Verdict{Reason: "no rule"}},
		{"AllowAll", AllowAll(), Verdict{Allow: true, Reason: "allow all"}},
	} {
		if got := tc.e.Evaluate(ctx, r); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		if err := tc.e.Close(); err != nil {
			t.Errorf("%s: Close: %v", tc.name, err)
		}
	}
}
