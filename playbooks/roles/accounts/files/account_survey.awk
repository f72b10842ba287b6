# What the accounts role has to change, read from login.defs, useradd's defaults, shells,
# passwd and shadow (given in this order, with -F:). One line per finding, tab-separated;
# password hashes are never printed.
#   setting <key> <value>  the value login.defs or useradd's defaults give <key> now
#   unshadowed <user>      its password is in /etc/passwd, not /etc/shadow        (CG-ACC-004)
#   empty <user>           its shadow password field is empty                     (CG-ACC-004)
#   login_shell <user>     a system account with a login shell                    (CG-ACC-009)
#   unlocked <user>        no login shell (now or after the fix) yet not locked   (CG-ACC-009)
#   aging <user> <args>    chage arguments that bring its password aging in line  (CG-ACC-006)
#   expiring <user>        aging left alone: the new maximum would expire it now  (CG-ACC-006)
# Variables (-v): exempt (comma-separated accounts), max, min, warn, inactive, today (days),
# keys (comma-separated login.defs/useradd keys to report).
BEGIN {
    n = split(exempt, names, ",")
    for (i = 1; i <= n; i++) if (names[i] != "") exempted[names[i]] = 1
    n = split(keys, names, ",")
    for (i = 1; i <= n; i++) if (names[i] != "") reported[names[i]] = 1
}
FILENAME ~ /login\.defs$/ {
    sub(/^[ \t]+/, "")
    split($0, field, /[ \t]+/)
    if (field[1] == "UID_MIN") uid_min = field[2] + 0
    if (field[1] in reported) setting[field[1]] = field[2]
    next
}
FILENAME ~ /useradd$/ {
    split($0, field, "=")
    if (field[1] in reported) setting[field[1]] = field[2]
    next
}
FILENAME ~ /shells$/ {
    if ($0 ~ /^\// && $0 !~ /nologin$/) valid[$0] = 1
    next
}
FILENAME ~ /passwd$/ {
    if (uid_min == 0) uid_min = 1000
    shell[$1] = $7
    if ($2 != "x") print "unshadowed\t" $1
    system_account = ($3 + 0 < uid_min || $3 + 0 == 65534)
    if ($1 != "root" && $1 !~ /^(sync|shutdown|halt)$/ && system_account && ($7 in valid) \
        && !($1 in exempted)) {
        print "login_shell\t" $1
        to_nologin[$1] = 1
    }
    next
}
FILENAME ~ /shadow$/ {
    if ($2 == "") print "empty\t" $1
    if ($1 != "root" && $2 !~ /^[!*]/ && (!(shell[$1] in valid) || ($1 in to_nologin)))
        print "unlocked\t" $1
    if ($2 ~ /^\$/) {
        args = ""
        if ($5 == "" || $5 + 0 > max || $5 + 0 < 1) args = args " -M " max
        if ($4 == "" || $4 + 0 < min) args = args " -m " min
        if ($6 == "" || $6 + 0 < warn) args = args " -W " warn
        if ($7 == "" || $7 + 0 > inactive || $7 + 0 < 0) args = args " -I " inactive
        if (args != "") {
            # a password older than the new maximum would expire at once, and a key login
            # with an expired password is refused: leave it to its owner, the check reports it
            if (args ~ /-M/ && ($3 == "" || $3 + 0 == 0 || $3 + max < today))
                print "expiring\t" $1
            else
                print "aging\t" $1 "\t" substr(args, 2)
        }
    }
}
END {
    for (key in setting) print "setting\t" key "\t" setting[key]
}
