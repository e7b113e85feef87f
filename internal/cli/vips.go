package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weft-dev/weft/internal/api"
)

// printVIPs prints each VIP, its holder and its last failover (time, cause,
// duration), after a blank line; nothing when the file has no VIPs.
func printVIPs(tw *tabwriter.Writer, vips []api.VIPStatus) {
	if len(vips) == 0 {
		return
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "VIP\tADDRESS\tMODE\tHOLDER\tEPOCH\tLAST FAILOVER\n")
	for _, v := range vips {
		holder := v.Holder
		if len(v.Holders) > 0 {
			holder = strings.Join(v.Holders, ",")
		}
		if holder == "" {
			holder = "-"
		}
		last := "-"
		if f := v.LastFailover; f != nil {
			from := f.From
			if from == "" {
				from = "(none)"
			}
			last = fmt.Sprintf("%s %s -> %s in %.0fms (%s)", f.At.Local().Format(time.TimeOnly), from, f.To, f.DurationMS, f.Cause)
		}
		fmt.Fprintf(tw, "%s\t%s:%d\t%s\t%s\t%d\t%s\n", v.Name, v.Address, v.Port, v.Mode, holder, v.Epoch, last)
	}
}
