# bench/plot.gp - deliveries/s against subscribers, one line per system.
# gnuplot -e "datafile='fanout.dat'; outfile='fanout.png'" bench/plot.gp
# datafile: blocks written by fanq-bench --plot-data, one per system, each
# opening with the system's name, then "subs median min max" lines.

if (!exists("datafile")) datafile = 'bench/results/fanout.dat'
if (!exists("outfile")) outfile = 'bench/results/fanout.png'

set terminal pngcairo size 960,600 noenhanced
set output outfile
set title "fanq-bench: fan-out of one channel (median, bars: min..max of runs)"
set xlabel "subscribers"
set ylabel "deliveries / s"
set logscale x 10
set logscale y 10
set format y "%.0s%c"
set grid
set key outside right top

stats datafile using 1 nooutput
plot for [i=0:STATS_blocks-1] datafile index i using 1:2:3:4 \
	with yerrorlines title columnheader(1)
