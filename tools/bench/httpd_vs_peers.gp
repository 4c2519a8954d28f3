# httpd_vs_peers.gp - draws the medians that tools/bench/httpd_vs_peers.sh
# computes from docs/httpd-peers.csv: requests/s and server CPU time per
# request, one cluster per (workers, load), one bar per server, log y axes.
#   gnuplot -e "rps='RPS.dat'; cpu='CPU.dat'; out='docs/httpd-peers.png'" tools/bench/httpd_vs_peers.gp
# Each .dat file: a header line "group mux-httpd nginx h2o lighttpd", then
# one line per group ("1w-4k 72900 55600 71400 77400").
set terminal pngcairo size 1300,520 font ",10"
set output out
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set key outside bottom center horizontal
set xtics nomirror
colors = "#d62728 #2ca02c #1f77b4 #ff7f0e"
set multiplot layout 1,2 title "mux-httpd vs nginx, h2o, lighttpd: wrk -t1 -c50 (HTTP/1.1), h2load -c100 -m100 -t1 (h2c, h2tls); server on core 0, client on core 1 (medians of 3 rounds)"
set ylabel "requests/s"
set format y "%.0s%c"
plot for [i=2:5] rps using i:xtic(1) title columnhead(i) lc rgb word(colors, i - 1)
set ylabel "server CPU per request (us)"
set format y "%g"
plot for [i=2:5] cpu using i:xtic(1) title columnhead(i) lc rgb word(colors, i - 1)
unset multiplot
