// Command initbin stands in for the weft binary in tests: it only runs
// `container-init`.
package main

import (
	"fmt"
	"os"

	"github.com/weft-dev/weft/internal/runtime"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "container-init" {
		runtime.ContainerInitMain()
	}
	fmt.Fprintln(os.Stderr, "usage: initbin container-init")
	os.Exit(2)
}
