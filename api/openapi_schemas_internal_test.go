package api

import "testing"

// TestJobSchemaDocsNameRealFields: a renamed or removed field of job.Job must not
// leave its description behind unnoticed.
func TestJobSchemaDocsNameRealFields(t *testing.T) {
	defs := jobSchemas()
	for key := range jobSchemaDocs {
		if schemaAt(defs, key) == nil {
			t.Errorf("jobSchemaDocs: %q is not a schema or property generated from the job package", key)
		}
	}
	for _, name := range []string{"Job", "Progress", "Output", "JobError", "Timings", "Delivery", "WebhookSpec", "JobStatus", "JobSpec"} {
		if defs[name] == nil {
			t.Errorf("no generated schema %s", name)
		}
	}
}
