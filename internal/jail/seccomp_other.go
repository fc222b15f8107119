//go:build linux && !amd64 && !arm64

package jail

// No table: Start refuses to run a command it cannot filter.
var (
	nativeABI syscallABI
	compatABI *syscallABI
)

const x32Bit = 0
