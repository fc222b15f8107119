package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
)

// CheckSource reports a rule source that cannot work before anything
// starts: flag is the option that named it (--js-file, --sh or --proc) and
// value what it was given (empty: not given). A --js-file must exist; the
// program --proc runs, and a --sh script without a space (one run
// directly, not by sh -c), must be found and executable. The engines check
// again when they start; this only turns a typo into a usage error rather
// than a rule that denies every request.
func CheckSource(flag, value string) error {
	if value == "" || (flag != "--js-file" && flag != "--sh" && flag != "--proc") {
		return nil
	}
	if flag == "--js-file" {
		if _, err := os.Stat(value); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: no such file: %s", flag, value)
		} else if err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		return nil
	}
	prog := value
	if flag == "--sh" && strings.Contains(value, " ") {
		return nil // a command line for sh -c
	}
	if f := strings.Fields(value); len(f) > 0 {
		prog = f[0]
	}
	if _, err := exec.LookPath(prog); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: no such program: %s", flag, prog)
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return fmt.Errorf("%s: %s: %w", flag, prog, err)
	}
	return nil
}
