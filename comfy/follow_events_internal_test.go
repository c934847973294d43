package comfy

import "testing"

func TestVersionAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"0.38.1": true, "0.38.2": true, "0.39.0": true, "1.0.0": true, "v0.38.1": true, "0.38.1-rc1": true,
		"0.38.0": false, "0.3.64": false, "0.38": false, "": false, "dev": false, "0.x.1": false,
	} {
		if got := versionAtLeast(v, 0, 38, 1); got != want {
			t.Errorf("versionAtLeast(%q, 0.38.1) = %v, want %v", v, got, want)
		}
	}
}
