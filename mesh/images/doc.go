// Package images holds the built-in programs that meshd runs as a task's
// "image": what the tutorials run as containers, rebuilt as a few hundred
// lines of Go.
//
// # Why images are built in
//
// meshd is Docker Swarm's networking without Docker: there is no image
// store, no registry client, no layered root filesystem and no container
// runtime, and adding them would bury the networking under machinery that
// has nothing to do with it. What the tutorials need from a container is
// small and always the same: something that answers HTTP on a port and says
// who it is (containous/whoami), a web page (nginx), and a shell-less box to
// exec into (alpine, busybox). Built in, these need no network access to
// "pull", start in microseconds, and behave identically on every node, so a
// curl through the routing mesh shows the mesh and nothing else. Anything
// else runs as a host command (`meshctl service create … -- CMD …`), which
// is not this package's business.
//
// # How a task runs one
//
// meshd starts a task by re-executing itself inside the task's network, UTS
// and mount namespaces; that child looks the image up with [Lookup] and
// calls [Run], in-process, until the task is stopped (its context ends).
// Because the child is inside the namespaces, [os.Hostname] is the task's
// 12-hex id and [net.Interfaces] lists the task's eth0, eth1, … exactly as
// a container would see them, so whoami's answer needs no help from meshd.
//
// # Fidelity
//
// Users put our output next to the tutorials', so the servers copy what
// users see rather than how the originals are built:
//   - whoami writes its answer the way containous/whoami (now traefik/whoami)
//     does: "Name:" if --name was given, "Hostname:", one "IP:" per address
//     of every interface in interface order (loopback first, IPv4 and IPv6
//     as the kernel lists them), "RemoteAddr:", then the request as
//     [http.Request.Write] renders it, which is what whoami calls: the
//     request line, Host, User-Agent (Go's default one if the client sent
//     none, as whoami shows too), the other headers sorted by name, a blank
//     line, then the body if any. /api is the same as JSON, /health answers
//     200 (POST a status code to change it). whoami's /bench, /data, /echo
//     (WebSocket) and ?env=true are left out: the tutorials do not use them,
//     and ?env would print meshd's own environment.
//   - nginx serves a page titled and headed "Welcome to nginx!" at / and
//     /index.html, sends "Server: nginx", answers 404 with an nginx-shaped
//     error page elsewhere and 405 to methods other than GET and HEAD. The
//     text of the page is our own.
//   - alpine and busybox wait for the end of their context, like
//     `sleep infinity`, so there is a task to exec into.
//
// Each server writes one line to the task's stdout when it listens
// ("whoami: listening on :80"); that is the task's log, plain text as a
// container's would be, so it does not go through slog. Shutdown is
// graceful: when the context ends, new connections are refused, requests in
// flight see their context cancelled (a whoami ?wait= ends early) and Run
// returns once they have finished, or after shutdownTimeout at worst.
package images
