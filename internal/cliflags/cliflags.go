package cliflags

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/pflag"
)

// once wraps a single-value flag's Value: a second Set is recorded, since
// the value it replaces would otherwise be lost without a word.
type once struct {
	pflag.Value
	name    string
	set     bool
	repeats *[]string
}

func (o *once) Set(s string) error {
	if o.set {
		*o.repeats = append(*o.repeats, o.name)
	}
	o.set = true
	return o.Value.Set(s)
}

// Once makes every flag of fs that holds one value (not a list, a count
// or a switch) remember being given twice; call it after the flags are
// defined. The returned func gives the first such flag's error, or nil.
func Once(fs *pflag.FlagSet) func() error {
	var repeats []string
	fs.VisitAll(func(f *pflag.Flag) {
		switch f.Value.Type() {
		case "stringArray", "stringSlice", "count", "bool":
			return
		}
		f.Value = &once{Value: f.Value, name: f.Name, repeats: &repeats}
	})
	return func() error {
		if len(repeats) == 0 {
			return nil
		}
		return fmt.Errorf("--%s is given twice: it takes one value", repeats[0])
	}
}

// ValueBeforeDash returns an error when a flag that takes a value is
// followed directly by "--" (pflag would take "--" as the value and the
// command as an option). It reads args as pflag will, up to the first
// argument that is not an option.
func ValueBeforeDash(fs *pflag.FlagSet, args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			return nil
		}
		if strings.Contains(a, "=") {
			continue
		}
		var f *pflag.Flag
		if name, ok := strings.CutPrefix(a, "--"); ok {
			f = fs.Lookup(name)
		} else {
			f = fs.ShorthandLookup(a[len(a)-1:])
		}
		if f == nil || f.NoOptDefVal != "" {
			continue
		}
		if i+1 < len(args) && args[i+1] == "--" {
			return fmt.Errorf("--%s needs a %s before --", f.Name, valueName(f))
		}
		i++ // its value
	}
	return nil
}

// valueName is the flag's value placeholder (`NAME` in its usage).
func valueName(f *pflag.Flag) string {
	name, _ := pflag.UnquoteUsage(f)
	if name == "" || strings.ToLower(name) == name {
		return "value"
	}
	return name
}

var flagWord = regexp.MustCompile(`--[a-z][a-z0-9-]*`)

// Hint is the help line of the first flag of fs that msg names, as
// "--name VALUE: usage"; "" when msg names none.
func Hint(fs *pflag.FlagSet, msg string) string {
	for _, w := range flagWord.FindAllString(msg, -1) {
		f := fs.Lookup(strings.TrimPrefix(w, "--"))
		if f == nil {
			continue
		}
		name, usage := pflag.UnquoteUsage(f)
		if name != "" && strings.ToLower(name) != name {
			return fmt.Sprintf("--%s %s: %s", f.Name, name, usage)
		}
		return fmt.Sprintf("--%s: %s", f.Name, usage)
	}
	return ""
}
