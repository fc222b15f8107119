package tests

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tree stays readable by someone who must change it: no function
// longer than a screenful, and a command package that only parses flags
// and prints (the work is in internal/supervisor, where it is tested in
// process). The bound grows with the command line (some 60 flags and
// seven subcommands), never with work that belongs elsewhere.
const (
	maxFuncLines = 80
	maxCmdLines  = 1400
)

// goFiles lists the Go files below the repository root, generated ones
// (bpf2go's output) and test data left out.
func goFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != ".." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.Contains(p, "_bpfel") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestNoFunctionIsLongerThanAScreenful(t *testing.T) {
	fset := token.NewFileSet()
	for _, p := range goFiles(t) {
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Errorf("parse %s: %v", p, err)
			continue
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start, end := fset.Position(fn.Pos()), fset.Position(fn.Body.Rbrace)
			if n := end.Line - start.Line + 1; n > maxFuncLines {
				t.Errorf("%s:%d %s is %d lines, want at most %d", p, start.Line, fn.Name.Name, n, maxFuncLines)
			}
		}
	}
}

func TestTheCommandPackageOnlyParsesAndPrints(t *testing.T) {
	gos, err := filepath.Glob("../cmd/ebpfjail/*.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, p := range gos {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines += strings.Count(string(b), "\n")
	}
	if lines >= maxCmdLines {
		t.Errorf("cmd/ebpfjail has %d lines of non-test Go, want under %d: move the work into internal/supervisor", lines, maxCmdLines)
	}
}

// A newcomer is pointed at the map and the hand-run entry points.
func TestReadmePointsAContributorToTheArchitectureAndTheScripts(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"ARCHITECTURE.md", "scripts/README.md", "scripts/testhost", "scripts/bench"} {
		if _, err := os.Stat(filepath.Join("..", p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, want := range []string{"](ARCHITECTURE.md)", "](scripts/README.md)"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not link %q", want)
		}
	}
}
