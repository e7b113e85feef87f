package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/weft-dev/weft/internal/api"
	"github.com/weft-dev/weft/internal/firewall"
)

// printFirewalls shows every host's firewall and the packets it dropped,
// one column per named counter.
func printFirewalls(tw *tabwriter.Writer, hosts []api.HostStatus) {
	names := firewall.CounterNames()
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "HOST\tFIREWALL\t%s\n", strings.ToUpper(strings.Join(names, "\t")))
	for _, h := range hosts {
		cells := make([]string, len(names))
		state := "on"
		switch fw := h.Firewall; {
		case fw == nil:
			state = "? (agent not answering)"
		case fw.Error != "":
			state = "? " + fw.Error
		case !fw.On:
			state = "off"
		}
		for i, name := range names {
			cells[i] = "-"
			if h.Firewall != nil && h.Firewall.On {
				cells[i] = fmt.Sprint(h.Firewall.Dropped[name])
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Name, state, strings.Join(cells, "\t"))
	}
}
