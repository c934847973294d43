// Package deploy holds comfyq's deployment files and the tests that validate them:
//
//	Dockerfile                    the container image (static binary, distroless, non-root)
//	compose.yaml                  Redis, MinIO, the API and a worker beside each ComfyUI
//	k8s/base                      API Deployment and Service, GPU pods (ComfyUI + worker),
//	                              PodDisruptionBudgets, NetworkPolicies, configuration
//	k8s/components/keda           a KEDA ScaledObject scaling GPU pods on the queue
//	k8s/overlays/dev              everything in a namespace, Redis and MinIO included,
//	                              simulated ComfyUI nodes (no GPU needed)
//	k8s/overlays/production       external Redis and S3, real ComfyUI, autoscaling
//	systemd                       units for a bare-metal GPU box
//
// How to run each of them is in docs/deploy.md; sizing, retention, backups, upgrades
// and scaling are in docs/operations.md.
//
// The package has no code. Its tests render every kustomize overlay and check the
// objects, run systemd-analyze on the units, and check the compose file, the
// Dockerfile and the example environment files against the comfyq command line: every
// command, flag and COMFYQ_* variable they use must exist, and every shutdown grace
// period must fit the worker's drain. BenchmarkRedisMemory and BenchmarkRedisIdleLoad
// measure what a job and an idle node cost Redis (docs/operations.md quotes them).
package deploy
