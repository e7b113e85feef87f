package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	sshprov "github.com/weft-dev/weft/internal/provider/ssh"
)

// newRenderCmd prints what weft would give a machine, without touching it.
func newRenderCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print files for preparing servers (cloud-init user-data)",
	}
	var weftURL string
	ci := &cobra.Command{
		Use:   "cloud-init HOST",
		Short: "Print the user-data that prepares a fresh VM as HOST of a provider ssh cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := g.loadFile()
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the weft binary: %w", err)
			}
			out, err := sshprov.RenderCloudInit(c, args[0], weftURL, exe)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			fmt.Fprint(g.stdout, out)
			return nil
		},
	}
	ci.Flags().StringVar(&weftURL, "weft-url", "", "where the VM downloads this weft binary from (its sha256 is checked); without it, weft up copies the binary over ssh")
	cmd.AddCommand(ci)
	return cmd
}
