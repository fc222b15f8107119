package cliflags

import (
	"testing"

	"github.com/spf13/pflag"
)

func flags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("js", "", "a `CODE`")
	fs.StringArray("no-mitm", nil, "a `HOSTGLOB`")
	fs.CountP("verbose", "v", "more")
	fs.Bool("weak", false, "no root")
	fs.StringP("user", "u", "", "as `USER`")
	return fs
}

func TestValueBeforeDashReadsArgsAsPflagDoes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-mitm", "--", "true"}, "--no-mitm needs a HOSTGLOB before --"},
		{[]string{"-vv", "-u", "--", "true"}, "--user needs a USER before --"},
		{[]string{"--weak", "--no-mitm", "a", "--no-mitm", "--"}, "--no-mitm needs a HOSTGLOB before --"},
		{[]string{"--js", "x", "--", "true"}, ""},
		{[]string{"--js=--", "--", "true"}, ""},
		{[]string{"--weak", "--", "--js", "--"}, ""},
		{[]string{"-v", "curl", "--js", "--"}, ""},
		{[]string{"--js"}, ""}, // pflag says the value is missing
	} {
		err := ValueBeforeDash(flags(), tc.args)
		if got := errString(err); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestOnceReportsASingleValueFlagGivenTwice(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--js", "a", "--js", "b"}, "--js is given twice: it takes one value"},
		{[]string{"-u", "a", "--user=b"}, "--user is given twice: it takes one value"},
		{[]string{"--no-mitm", "a", "--no-mitm", "b", "-vv", "--weak", "--weak"}, ""},
	} {
		fs := flags()
		repeated := Once(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := errString(repeated()); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestHintIsTheNamedFlagsHelpLine(t *testing.T) {
	fs := flags()
	for msg, want := range map[string]string{
		`invalid argument "x" for "--user" flag`: "--user USER: as USER",
		"--weak and --js clash":                  "--weak: no root",
		"unknown flag: --nope":                   "",
	} {
		if got := Hint(fs, msg); got != want {
			t.Errorf("Hint(%q): got %q, want %q", msg, got, want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
