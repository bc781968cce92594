#!/bin/sh
# div.sh A B: prints A divided by B (whole numbers).
a=$1; b=$2
echo $((a / b))
