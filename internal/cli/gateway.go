package cli

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/weft-dev/weft/internal/gateway"
)

// newGatewayCmd runs the L7 gateway; it is meant to run as a container
// (`command: [weft, gateway]`), configured by the agent through
// $WEFT_GATEWAY_CONFIG, or by hand with --config.
func newGatewayCmd(g *globals) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the HTTP gateway (routes, retries, timeouts, metrics) — as a container",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg gateway.Config
			var err error
			if configFile != "" {
				cfg, err = gateway.LoadConfig(configFile)
			} else {
				cfg, err = gateway.ConfigFromEnv()
			}
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			log := slog.New(slog.NewJSONHandler(g.stderr, nil))
			gw, err := gateway.New(cfg, gateway.NewDNSResolver(cfg.Domain, 0), log)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			return gw.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "gateway config as a JSON file (default: $"+gateway.ConfigEnv+")")
	return cmd
}
