/*
 * version.h - coserve's version, in this one place: `coserve --version`
 * prints it, and a release changes only this line.
 */
#ifndef COSERVE_VERSION_H
#define COSERVE_VERSION_H

#define COSERVE_VERSION "0.9.0"

#endif
