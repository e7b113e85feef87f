// Command weft runs microservices across Linux hosts joined by one VXLAN
// overlay; `weft up` builds a whole cluster from one file.
package main

import (
	"os"

	"github.com/weft-dev/weft/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args)) }
