// Package appliance holds the end-to-end tests of the Docker appliance
// (issue 7): the image built offline from the repository's Dockerfile, started
// with the repository's docker-compose.yml on a real Docker engine, driven the
// way a user drives it (`docker exec <agent> tetra getevents -o compact`,
// workloads in other containers).
//
// The tests run as root on the host lane (scripts/test.sh); they start dockerd
// with scripts/docker/ensure-dockerd.sh when it is not running. Without a
// usable engine they skip, except under CI=true, where they fail. The qemu
// lanes have no Docker engine: there the package skips.
package appliance
