package supervisor

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
)

// SudoPathFix is how to keep one's PATH (and API keys) through sudo, which
// resets both: -E keeps the environment but not PATH where sudoers sets a
// secure_path; env or --preserve-env=PATH keeps PATH.
const SudoPathFix = `keep your PATH through sudo: sudo env PATH="$PATH" ebpfjail ..., or sudo --preserve-env=PATH,OPENAI_API_KEY ebpfjail ... (sudo -E keeps variables but not PATH)`

// systemDirs are the directories sudo's secure_path is made of on the
// common distributions.
var systemDirs = map[string]bool{
	"/usr/local/sbin": true, "/usr/local/bin": true, "/usr/sbin": true, "/usr/bin": true,
	"/sbin": true, "/bin": true, "/snap/bin": true,
}

// userBinDirs are where people install tools outside the system
// directories, relative to their home; userBinGlobs hold a version.
var (
	userBinDirs = []string{".local/bin", "bin", "go/bin", ".cargo/bin", ".npm-global/bin",
		".bun/bin", ".deno/bin", ".volta/bin", ".local/share/pnpm", ".yarn/bin", ".pyenv/shims",
		".rbenv/shims", ".dotnet/tools", ".nix-profile/bin"}
	userBinGlobs = []string{".nvm/versions/node/*/bin"}
	toolDirs     = []string{"/usr/local/go/bin", "/home/linuxbrew/.linuxbrew/bin", "/nix/var/nix/profiles/default/bin"}
)

// SudoNotFound explains a command not found because sudo reset PATH: under
// sudo (SUDO_USER set in env), name (no slash) is an executable in a
// directory people keep on their own PATH that env's PATH lacks (in
// SUDO_USER's home, or /usr/local/go/bin and the like), or env's PATH holds
// system directories only, as sudo's secure_path does. It returns what to
// add to the error ("" when sudo is not the likely cause).
func SudoNotFound(name string, env []string) string {
	sudoUser := lookupEnv(env, "SUDO_USER")
	if sudoUser == "" || name == "" || strings.Contains(name, "/") {
		return ""
	}
	path := lookupEnv(env, "PATH")
	inPath := map[string]bool{}
	onlySystem := true
	for _, d := range filepath.SplitList(path) {
		inPath[d] = true
		onlySystem = onlySystem && systemDirs[d]
	}
	for _, dir := range candidateDirs(sudoUser) {
		if inPath[dir] {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return "sudo reset PATH; " + name + " is in " + dir
		}
	}
	if onlySystem {
		return "PATH is sudo's secure_path " + path + ", not yours"
	}
	return ""
}

// candidateDirs lists the directories SudoNotFound looks in, the invoking
// user's own first.
func candidateDirs(sudoUser string) []string {
	var dirs []string
	if u, err := user.Lookup(sudoUser); err == nil && u.HomeDir != "" {
		for _, d := range userBinDirs {
			dirs = append(dirs, filepath.Join(u.HomeDir, d))
		}
		for _, g := range userBinGlobs {
			m, _ := filepath.Glob(filepath.Join(u.HomeDir, g))
			dirs = append(dirs, m...)
		}
	}
	return append(dirs, toolDirs...)
}
