# uring_vs_epoll.gp - draws docs/uring-echo.csv (from uring_vs_epoll.sh echo):
# requests/s and server CPU per request against the number of connections,
# log x axis, one line per server.
#   gnuplot -e "csv='docs/uring-echo.csv'; out='docs/uring-echo.png'" tools/bench/uring_vs_epoll.gp
if (!exists("csv")) csv = 'docs/uring-echo.csv'
if (!exists("out")) out = 'docs/uring-echo.png'
set terminal pngcairo size 1200,560 font ",10"
set output out
set datafile separator ","
servers = "baseline epoll uring"
titles = "'hand-written epoll loop (epoll\\_echo)' 'mux-echo --poller epoll' 'mux-echo --poller uring'"
colors = "#7f7f7f #1f77b4 #d62728"
rows(s) = sprintf("< awk -F, '$2 == \"%s\"' %s", s, csv) # one server's rows, so lines join
set logscale x
set xrange [0.8:12000]
set xlabel "connections (each one 64-byte request in flight)"
set grid
set key inside left bottom vertical Left reverse box opaque samplen 2
set multiplot layout 1,2 title "echo, mux-stress -t 1 -c N -p 1 -s 64, server and client pinned to one core each (median of runs)"
set ylabel "requests/s"
set yrange [0:*]
set format y "%.0s%c"
plot for [i=1:words(servers)] rows(word(servers, i)) using 1:3 \
    with linespoints lw 2 pt i ps 1.3 lc rgb word(colors, i) title word(titles, i)
set ylabel "server CPU per request (us)"
unset key
set format y "%g"
plot for [i=1:words(servers)] rows(word(servers, i)) using 1:4 \
    with linespoints lw 2 pt i ps 1.3 lc rgb word(colors, i) title word(titles, i)
unset multiplot
