package plan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/naming"
	"github.com/weft-dev/weft/internal/spec"
)

// CheckAssignment says why an assignment read from the store under
// assign/<name> is not one Place could have made, or nil. Agents check
// every assignment they read with it before acting on it. c is the applied
// file it belongs to; with c nil only the assignment's own consistency is
// checked. A service missing from c is not an error: the file may just have
// dropped it, and the leader removes its assignments.
func CheckAssignment(c *spec.Cluster, name string, a model.Assignment) error {
	var problems []error
	if a.Container != name {
		problems = append(problems, fmt.Errorf("it names container %q", a.Container))
	}
	if a.Service == "" || a.Index < 1 || naming.ContainerName(a.Service, a.Index) != a.Container {
		problems = append(problems, fmt.Errorf("container %q is not service %q's replica %d", a.Container, a.Service, a.Index))
	}
	if a.Host == "" {
		problems = append(problems, errors.New("it names no host"))
	}
	mac, err := naming.ContainerMAC(a.IP)
	switch {
	case err != nil:
		problems = append(problems, err)
	case a.MAC != mac.String():
		problems = append(problems, fmt.Errorf("MAC %q is not %s, the one of address %s", a.MAC, mac, a.IP))
	}
	if c != nil {
		if _, ok := c.HostByName(a.Host); !ok && a.Host != "" {
			problems = append(problems, fmt.Errorf("host %q is not in cluster %s", a.Host, c.Name))
		}
		if err == nil && (!c.Overlay.CIDR.Contains(a.IP) || c.IsReserved(a.IP)) {
			problems = append(problems, fmt.Errorf("address %s is not a container address of overlay %s", a.IP, c.Overlay.CIDR))
		}
	}
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = p.Error()
		}
		return fmt.Errorf("assignment %s refused: %s", name, strings.Join(msgs, "; "))
	}
	return nil
}
