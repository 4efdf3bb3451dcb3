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
// who it is (containous/whoami), a web page (nginx), a shell-less box to
// exec into (alpine, busybox, centos, ubuntu, debian), and for the
// multi-service examples a search node to curl (elasticsearch:2), a key-value
// store (redis) and a web page that counts its views in that store by the
// service name "redis" (jpetazzo/trainingwheels), which is what shows
// service discovery across an overlay. Built in, these need no network access to
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
// An image whose real program the node has is that program instead: the
// child execs what [Program] names (Debian's redis-server for redis).
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
//   - elasticsearch answers GET / as an Elasticsearch 2.4.6 node does, in
//     its pretty style ("name" : "…"): a node name picked at start from our
//     own list of Marvel-style names (Elasticsearch 2 picked Marvel
//     characters) and kept for the life of the task, cluster
//     "elasticsearch", a random cluster_uuid, version 2.4.6, "You Know, for
//     Search". GET /_cluster/health answers a green one-node cluster; any
//     other path is a missing index (404, Elasticsearch's JSON error), other
//     methods 405. Nothing is indexed or searched, and the transport port
//     9300 is not opened.
//   - redis is Debian's redis-server where it is installed (make deps
//     installs it): the real server, as Docker's redis image runs it, but
//     keeping nothing on disk (see [Program]). Elsewhere the built-in one
//     speaks RESP on 6379, also inline ("PING" typed in telnet):
//     PING, ECHO, GET, SET (without options), INCR, INCRBY, DEL, EXISTS,
//     COMMAND (an empty list), QUIT, with redis's replies and error wording.
//     Values are strings kept in memory; there are no other types, no
//     expiry, no persistence, no AUTH or SELECT, and inline commands do not
//     honour quotes. Limits are far below redis's: 512 KiB per argument,
//     1024 arguments and 1 MiB per command, 100000 keys and 64 MiB stored
//     (past them SET answers redis's OOM error), 1000 clients.
//   - jpetazzo/trainingwheels serves a page titled "Training wheels" on
//     5000: on each GET / it resolves "redis" (through the task's
//     resolv.conf, so meshd's DNS), sends INCR hits, and shows the count
//     and the task's hostname; if redis cannot be resolved, reached or
//     understood within a second, the page (still 200, as the original
//     Flask app's) says "Redis connection error" and why. The page's words
//     are our own.
//   - alpine, busybox, centos, ubuntu and debian wait for the end of their
//     context, like `sleep infinity`, so there is a task to exec into;
//     given a command they run it instead (see [Image.RunsCommand]). A
//     task idles this way only where the node has no tini: with one, it
//     runs [IdleCommand] under tini instead (see mesh/task).
//
// Each server writes one line to the task's stdout when it listens
// ("whoami: listening on :80", "trainingwheels: listening on :5000"); that is the task's log, plain text as a
// container's would be, so it does not go through slog. Shutdown is
// graceful: when the context ends, new connections are refused, requests in
// flight see their context cancelled (a whoami ?wait= ends early) and Run
// returns once they have finished, or after shutdownTimeout at worst;
// redis closes its connections at once, as a stopped redis-server would.
package images
