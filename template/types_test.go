package template

import "testing"

// TestTypesAreValid: the list the OpenAPI document's enum comes from is the set
// validType accepts.
func TestTypesAreValid(t *testing.T) {
	t.Parallel()
	for _, typ := range Types() {
		if !validType(typ) {
			t.Errorf("Types() lists %q, which validType refuses", typ)
		}
	}
	if validType("object") {
		t.Error("validType accepts a type Types() does not list")
	}
}
