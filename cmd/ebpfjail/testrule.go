package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/ebpfjail/ebpfjail/internal/jail"
	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// knownMethods are the methods --test takes; others fall back to GET, as
// httpjail does.
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "CONNECT": true,
	"OPTIONS": true, "TRACE": true, "PATCH": true,
}

// runTest evaluates the rule once for --test [METHOD] URL: prints
// "ALLOW METHOD URL" (exit 0) or "DENY METHOD URL" (exit 1), then the deny
// message or the rule's output if there is one.
func runTest(w io.Writer, o *options, log *slog.Logger) (int, error) {
	method, raw := "GET", o.testArgs[0]
	if len(o.testArgs) == 2 {
		method, raw = strings.ToUpper(o.testArgs[0]), o.testArgs[1]
		if !knownMethods[method] {
			method = "GET"
		}
	}
	// --sh and --proc run as whoever runs --test.
	me := &jail.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	engine, err := buildEngine(o, log, me)
	if err != nil {
		return 0, err
	}
	defer engine.Close()
	req, err := rules.RequestFromURL(method, raw)
	var v rules.Verdict
	if err != nil {
		v = rules.Verdict{DenyMessage: "Invalid request format: " + err.Error()}
	} else {
		v = engine.Evaluate(context.Background(), req)
	}
	verdict, status := "DENY", 1
	if v.Allow {
		verdict, status = "ALLOW", 0
	}
	fmt.Fprintf(w, "%s %s %s\n", verdict, method, raw)
	switch {
	case v.DenyMessage != "":
		fmt.Fprintln(w, v.DenyMessage)
	case strings.HasPrefix(v.Reason, "rule: "):
		fmt.Fprintln(w, strings.TrimPrefix(v.Reason, "rule: "))
	case strings.HasPrefix(v.Reason, "rule error") || strings.Contains(v.Reason, "timed out"):
		log.Warn("the rule failed", "reason", v.Reason)
	}
	return status, nil
}
