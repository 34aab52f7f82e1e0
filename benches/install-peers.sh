#!/bin/sh
# Installs the system peer the compare binary loads at run time: Intel ISA-L
# (Debian's libisal-dev, which provides libisal.so.2). The Rust peers come from
# crates.io through Cargo and need nothing here.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update
$SUDO apt-get install -y libisal-dev
