# poller_scaling.gp - draws docs/poller-scaling.csv (from poller_scaling.sh):
# requests/s and p99 latency against the number of idle connections K, log
# x axis (K = 0 is drawn at x = 10 and labelled 0), one line per server.
#   gnuplot -e "data='docs/poller-scaling.csv'; out='docs/poller-scaling.png'" tools/bench/poller_scaling.gp
if (!exists("data")) data = 'docs/poller-scaling.csv'
if (!exists("out")) out = 'docs/poller-scaling.png'
set terminal pngcairo size 1200,560 font ",10"
set output out
set datafile separator ","
set key autotitle columnhead
servers = "epoll epoll-edge poll select uring thread"
titles = "'mux-echo epoll' 'mux-echo epoll --edge' 'mux-echo poll' 'mux-echo select (largest K = 900)' 'mux-echo uring' 'thread-per-connection'"
xk(k) = k < 1 ? 10 : k
sel(s, v) = strcol(1) eq s ? v : NaN
set logscale x
set xrange [7:14000]
set xtics ("0" 10, "100" 100, "1000" 1000, "10000" 10000)
set xlabel "idle connections held open (K)"
set grid
set key inside left bottom vertical Left reverse box opaque samplen 2 spacing 1.1

colors = "#1f77b4 #17becf #ff7f0e #d62728 #9467bd #2ca02c"
set multiplot layout 1,2 title "echo round trips, mux-stress -c 10 -p 1 -s 64, server and client pinned to one core each (median of runs)"
set ylabel "requests/s"
set yrange [0:*]
set format y "%.0s%c"
plot for [i=1:words(servers)] data using (xk($2)):(sel(word(servers, i), $3)) \
    with linespoints lw 2 pt i ps 1.3 lc rgb word(colors, i) title word(titles, i)
set ylabel "p99 latency (us)"
unset key
set logscale y
set yrange [*:*]
set format y "%g"
plot for [i=1:words(servers)] data using (xk($2)):(sel(word(servers, i), $5)) \
    with linespoints lw 2 pt i ps 1.3 lc rgb word(colors, i) title word(titles, i)
unset multiplot
