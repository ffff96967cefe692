#!version:1.0.0.1
## deskprov boot file for 805ec0aabb02: later files override earlier ones.
include:config "y000000000096.cfg"
include:config "805ec0aabb02.cfg"
overwrite_mode = 1
