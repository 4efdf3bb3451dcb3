// Package nsfile keeps network namespaces as files, the way Swarm keeps
// them under /var/run/docker/netns: each namespace is held by a bind mount
// of its nsfs inode onto a file, so it outlives the thread that made it and
// `nsenter --net=<file>` reaches it.
//
// Everything that enters a namespace does so on a goroutine locked to an OS
// thread that is never unlocked: the runtime ends that thread with the
// goroutine, so no other goroutine ever runs in the wrong namespace and
// there is nothing to restore.
package nsfile
