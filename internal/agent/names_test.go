package agent

import "testing"

func TestIsContainerName(t *testing.T) {
	for name, want := range map[string]bool{
		"web-1": true, "product-service-12": true, "a": true,
		"": false, "../etc/passwd": false, "web/../../x": false, "Web-1": false, "1web": false, "web 1": false, "web.1": false,
	} {
		if got := isContainerName(name); got != want {
			t.Errorf("isContainerName(%q) = %v, want %v", name, got, want)
		}
	}
}
