package spec

// Facts of VXLAN that the cluster file is checked against and the overlay
// package programs the kernel with: the one source of both.
const (
	// VXLANOverhead is what VXLAN over IPv4 adds to every frame (outer
	// IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14): overlay MTU = underlay
	// MTU - 50.
	VXLANOverhead = 50
	// MinVNI and MaxVNI bound a VXLAN network identifier: 24 bits, 0 left
	// out.
	MinVNI = 1
	MaxVNI = 1<<24 - 1
)

// VNIInRange reports whether vni is a VXLAN network identifier.
func VNIInRange(vni int) bool { return vni >= MinVNI && vni <= MaxVNI }
