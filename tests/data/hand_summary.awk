# Hand computation of the run summary from timeline.csv, independent of the Python code.
# columns: 1 t, 2 users, 3 rps, 4 cpu, 5 desired, 6 ready, 7 pending, 8 nodes, 9 response_ms
BEGIN { FS = "," }
NR == 1 { next }
{ n++; t[n] = $1; u[n] = $2; d[n] = $5; r[n] = $6; p[n] = $7; nd[n] = $8; resp[n] = $9 }
END {
  maxr = 0; maxn = 0
  for (i = 1; i <= n; i++) { if (r[i] > maxr) maxr = r[i]; if (nd[i] > maxn) maxn = nd[i] }
  first = -1; last = -1
  for (i = 1; i <= n; i++) if (u[i] > 0) { if (first < 0) first = i; last = i }
  so = "none"; for (i = first; i <= n; i++) if (d[i] > r[1]) { so = t[i] - t[first]; break }
  fn = "none"; for (i = first; i <= n; i++) if (nd[i] > nd[1]) { fn = t[i] - t[first]; break }
  back = "none"; end_i = last + 1
  for (i = end_i; i <= n; i++) if (r[i] <= r[1] && nd[i] <= nd[1]) { back = t[i] - t[end_i]; break }
  for (i = 1; i < n; i++) {
    dt = t[i+1] - t[i]; rs += r[i] * dt; ns += nd[i] * dt
    if (p[i] > 0) ps += dt
    if (u[i] > 0 && (resp[i] == "" || resp[i] > 1000)) slo += dt
  }
  printf "max_replicas %d\nmax_nodes %d\nfirst_scale_out %s\nfirst_node %s\nscale_in %s\nreplica_minutes %.4f\nnode_minutes %.4f\npending_seconds %.1f\nslo_seconds %.1f\n", maxr, maxn, so, fn, back, rs/60, ns/60, ps, slo
}
