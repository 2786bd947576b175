"""The INSERT ... SELECT FROM generate_series statements behind stagesub.seed, one per StageSub table."""

from __future__ import annotations

from typing import LiteralString

# Pseudo-random values come from md5 rather than random() so that a run is a pure function of its
# arguments (and of nothing the server does): h() is one 128-bit draw per (seed, tenant, table, n) and
# r(h, k, m) is its k-th 28-bit slice (k = 0..3) reduced modulo m. Written as one-expression SQL functions
# the planner inlines them, which keeps a million-row INSERT free of per-row function calls.
HELPERS: tuple[LiteralString, ...] = (
    "CREATE FUNCTION pg_temp.h(s int, t text, tag text, n bigint) RETURNS text LANGUAGE sql IMMUTABLE "
    "AS $$ SELECT md5(s::text || ':' || t || ':' || tag || ':' || n::text) $$",
    "CREATE FUNCTION pg_temp.r(hash text, k int, m bigint) RETURNS bigint LANGUAGE sql IMMUTABLE "
    "AS $$ SELECT mod(('x' || substr(hash, 1 + 7 * k, 7))::bit(28)::bigint, greatest(m, 1)) $$",
    # Six digits at least, more when needed (lpad would truncate), and n only once so that the planner
    # inlines the call even when n is an expression; to_char makes it STABLE rather than IMMUTABLE.
    "CREATE FUNCTION pg_temp.id(t text, abbr text, n bigint) RETURNS text LANGUAGE sql STABLE "
    "AS $$ SELECT t || '-' || abbr || '-' || to_char(n, 'FM999999999999000000') $$",
    "CREATE FUNCTION pg_temp.pick(arr text[], hash text, k int) RETURNS text LANGUAGE sql IMMUTABLE "
    "AS $$ SELECT arr[1 + pg_temp.r(hash, k, cardinality(arr))] $$",
)

# Awkward on purpose: NULL array elements become NULL columns; quotes, backslashes, a "\." line (the end
# marker of COPY text format), tabs, CR/LF, emoji, CJK, combining characters and right-to-left script.
WORDS: dict[str, list[str | None]] = {
    "fn": ["Antonín", "Jean", "Søren", "Zoë", "Łukasz", "José", "Björk", "Nnamdi", "美咲", "Дмитрий", "Ελένη",
           "D'Arcy", "Anna-Lena", "Siobhán", "Ōta", "Chloé", "Jürgen", "Noa"],
    "ln": ["Dvořák", "Sibelius", "Nielsen", "Müller", "O'Connor", "Ngũgĩ", "山田", "Kowalski", "García Márquez",
           "Smith\\Jones", "van der Berg", "Ødegaard", "Çelik", "Nguyễn", "Sibelius-Akatemia", "Łoś"],
    "notes": [None, None, None, 'Prefers "Pult 1"; can\'t do Sundays', "Noten: C:\\Noten\\Dvořák\\Sinfonie_9.pdf",
              "Zweite Zeile folgt\nSecond line\tafter a tab\r\nthird (CRLF)", "Ends with a backslash \\",
              "\\.\nThe line above is only backslash-dot", "Emoji 🎻🎺🥁 · CJK 交響楽団 · עִברִית · e\u0301",
              "O'Brien's \"quoted\" note; -- not a comment; /* nor this */", "", "trailing spaces   "],
    "instr": ["Violine I", "Violine II", "Viola", "Violoncello", "Kontrabass", "Flöte", "Oboe", "Klarinette",
              "Fagott", "Horn", "Trompete", "Posaune", "Tuba", "Pauke", "Schlagwerk", "Harfe", "Celesta",
              "Saxophon", "Cor anglais", "Piccolo", "二胡 (Erhu)", "Kantele", "Theremin 〰", "Sopran", "Alt",
              "Tenor", "Bass"],
    "posn": ["Tutti", "Stimmführer", "Solo", "Aushilfe", "Vorspieler", "Concertmaster 'Konzertmeister'"],
    "pnames": ["Sinfoniekonzert", "Neujahrskonzert 🎆", "Mahler 2 „Auferstehung“", "Le nozze di Figaro",
               "Children's concert", "Tournée Japan 日本ツアー", "Kammermusik \\ Matinee", "Sibelius: Kullervo"],
    "venues": ["Philharmonie Berlin", "Musiikkitalo / Sibelius-Akatemia", "Sydney Opera House", "サントリーホール",
               "Teatro Colón", "St. John's Smith Square", None],
    "tz": ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Adelaide", "Asia/Kolkata",
           "Pacific/Chatham", "America/St_Johns", "UTC"],
    "tags": ["abo", "tour", "outdoor", "broadcast", "jugend", "🎼"],
    "files": ["Stimme_Violine_I.pdf", "Dvořák – Bögen (rev. 2).pdf", "score \"final\".musicxml", "plan.xlsx",
              "Probenplan 2024\\25.docx", "録音.wav"],
    "mimes": ["application/pdf", "application/vnd.recordare.musicxml+xml", "audio/wav", "video/mp4",
              "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
    "subjects": ["Anfrage: Dienst im Projekt", "Erinnerung – bitte antworten", "Zusage bestätigt ✔", "Absage",
                 "[StageSub] Dvořák: Sinfonie Nr. 9 „Aus der Neuen Welt“", "Re: O'Brien \\ backslash"],
    "bodies": ["Liebe Musikerin, lieber Musiker,\nwir freuen uns auf Ihre Antwort.\n\nViele Grüße",
               "<p>Hello <b>\"there\"</b> &amp; welcome</p>\r\n<p>Reply: <a href='https://x.test/?a=1&b=2'>yes</a></p>",
               "SMS: Dienst Sa 19:30 🎻 Antwort J/N", "Pfad C:\\temp\\new\\table.txt\tund ein Tab",
               "\\.\n", "お疲れ様です。リハーサルは十時からです。", "Кратко: репетиция в 10:00"],
    "tnames": ["request.invite", "request.reminder", "request.accepted", "request.declined", "newsletter",
               "Einladung – Dvořák", "sms.short", "O'Brien's template"],
}

# One row of per-tenant parameters that every statement joins. toast_tuple_target keeps the word lists
# inline and uncompressed (toasted, they were fetched again for every generated row) while `big`, the
# 100 KB+ text body (hex lines, which TOAST cannot compress away), goes out of line and is read only
# by the few rows that use it.
PARAMS_TABLE: LiteralString = """
CREATE TEMP TABLE seed_params WITH (toast_tuple_target = 8160) AS SELECT
    %(t)s::text AS t, %(name)s::text AS name, %(plan)s::text AS plan, %(s)s::int AS s,
    %(now)s::timestamptz AS now, (%(now)s::timestamptz AT TIME ZONE 'UTC') AS nowu, %(nrun)s::int AS nrun,
    %(nus)s::int AS nus, %(nse)s::int AS nse, %(nmu)s::int AS nmu, %(nin)s::int AS nin, %(npo)s::int AS npo,
    %(nrl)s::int AS nrl, %(nrk)s::int AS nrk, %(npr)s::int AS npr, %(nact)s::int AS nact,
    %(nnp)s::int AS nnp, %(nnf)s::int AS nnf, %(npf)s::int AS npf, %(nrq)s::int AS nrq,
    %(ncl)s::int AS ncl, %(net)s::int AS net, %(nau)s::int AS nau, %(njb)s::int AS njb, %(nbk)s::int AS nbk,
    %(fn)s::text[] AS fn, %(ln)s::text[] AS ln, %(notes)s::text[] AS notes, %(instr)s::text[] AS instr,
    %(posn)s::text[] AS posn, %(pnames)s::text[] AS pnames, %(venues)s::text[] AS venues,
    %(tz)s::text[] AS tz, %(tags)s::text[] AS tags, %(files)s::text[] AS files, %(mimes)s::text[] AS mimes,
    %(subjects)s::text[] AS subjects, %(bodies)s::text[] AS bodies, %(tnames)s::text[] AS tnames,
    (SELECT string_agg(md5(i::text) || ' ' || (%(bodies)s::text[])[1 + mod(i, cardinality(%(bodies)s::text[]))],
                       chr(10))
     FROM generate_series(1, 1500) i) AS big
"""

# Whole-database backups belong to no tenant (tenantId NULL): a move must leave them where they are.
GLOBAL_BACKUPS: LiteralString = """
INSERT INTO "Backup" (id, "tenantId", kind, "sizeBytes", "storageKey", "createdAt")
SELECT ':shared:-bak-' || lpad(g::text, 6, '0'), NULL, 'full-cluster', 40000000000 + g,
       's3://stagesub-backups/cluster/' || g, (%(now)s::timestamptz AT TIME ZONE 'UTC') - make_interval(days => g)
FROM generate_series(1, 3) g
ON CONFLICT (id) DO NOTHING
"""

STATEMENTS: tuple[tuple[str, LiteralString], ...] = (
    ("Tenant", """
INSERT INTO "Tenant" (id, name, slug, plan, "createdAt", "updatedAt")
SELECT p.t, p.name, p.t, p.plan::"TenantPlan", p.nowu - interval '3 years', p.nowu - interval '1 day'
FROM seed_params p"""),
    ("User", """
INSERT INTO "User" (id, "tenantId", email, name, role, "lastActiveAt", "createdAt", "updatedAt")
SELECT pg_temp.id(p.t, 'usr', g), p.t, 'user' || g || '@' || p.t || '.stagesub.test',
       pg_temp.pick(p.fn, x.h, 0) || ' ' || pg_temp.pick(p.ln, x.h, 1),
       (CASE WHEN g = 1 THEN 'owner' ELSE (ARRAY['admin', 'manager', 'viewer'])[1 + pg_temp.r(x.h, 2, 3)] END
        )::"UserRole",
       CASE WHEN mod(g, 5) = 0 THEN NULL ELSE p.nowu - make_interval(mins => pg_temp.r(x.h, 3, 43200)::int) END,
       p.nowu - interval '2 years', p.nowu - interval '1 day'
FROM seed_params p, LATERAL (SELECT g, pg_temp.h(p.s, p.t, 'usr', g) AS h FROM generate_series(1, p.nus) g OFFSET 0) x"""),
    # The first third of the users have a session seen in the last ten minutes: "active users".
    ("Session", """
INSERT INTO "Session" (id, "sessionToken", "userId", expires, "lastSeenAt", "createdAt")
SELECT pg_temp.id(p.t, 'ses', g), x.h || pg_temp.h(p.s, p.t, 'ses-token', g),
       pg_temp.id(p.t, 'usr', mod(g - 1, p.nus) + 1), y.seen + interval '30 days', y.seen, y.seen - interval '1 day'
FROM seed_params p, LATERAL (SELECT g, pg_temp.h(p.s, p.t, 'ses', g) AS h FROM generate_series(1, p.nse) g OFFSET 0) x,
     LATERAL (SELECT CASE WHEN g <= greatest(1, p.nus / 3) THEN p.nowu - make_interval(secs => pg_temp.r(x.h, 0, 600))
                     ELSE p.nowu - make_interval(hours => 2 + pg_temp.r(x.h, 0, 1440)::int) END AS seen) y"""),
    ("Musician", """
INSERT INTO "Musician" (id, "tenantId", "firstName", "lastName", email, phone, notes, active, "createdAt",
                        "updatedAt")
SELECT pg_temp.id(p.t, 'mus', g), p.t, pg_temp.pick(p.fn, x.h, 0), pg_temp.pick(p.ln, x.h, 1),
       'musician' || g || '@' || p.t || '.example',
       CASE WHEN mod(g, 5) = 0 THEN NULL ELSE '+49 30 ' || lpad(pg_temp.r(x.h, 2, 10000000)::text, 7, '0') END,
       pg_temp.pick(p.notes, x.h, 3), mod(g, 10) <> 0,
       p.nowu - make_interval(days => 30 + pg_temp.r(x.h, 2, 1500)::int),
       p.nowu - make_interval(days => pg_temp.r(x.h, 3, 30)::int)
FROM seed_params p, LATERAL (SELECT g, pg_temp.h(p.s, p.t, 'mus', g) AS h FROM generate_series(1, p.nmu) g OFFSET 0) x"""),
    ("Instrument", """
INSERT INTO "Instrument" (id, "tenantId", name, "sortOrder", "createdAt")
SELECT pg_temp.id(p.t, 'ins', g), p.t,
       p.instr[1 + mod(g - 1, cardinality(p.instr))]
       || CASE WHEN g > cardinality(p.instr) THEN ' ' || ((g - 1) / cardinality(p.instr) + 1) ELSE '' END,
       g, p.nowu - interval '3 years'
FROM seed_params p, generate_series(1, p.nin) g"""),
    ("Position", """
INSERT INTO "Position" (id, "tenantId", "instrumentId", name, "createdAt")
SELECT pg_temp.id(p.t, 'pos', g), p.t, pg_temp.id(p.t, 'ins', mod(g - 1, p.nin) + 1),
       pg_temp.pick(p.posn, pg_temp.h(p.s, p.t, 'pos', g), 0) || ' ' || g, p.nowu - interval '3 years'
FROM seed_params p, generate_series(1, p.npo) g"""),
    # Musician m holds positions m and m + npo/2 (mod npo): two distinct ones, as the unique key requires.
    ("MusicianQualification", """
INSERT INTO "MusicianQualification" (id, "musicianId", "positionId", level, "createdAt")
SELECT pg_temp.id(p.t, 'qua', g), pg_temp.id(p.t, 'mus', (g - 1) / 2 + 1),
       pg_temp.id(p.t, 'pos', mod((g - 1) / 2 + mod(g - 1, 2) * (p.npo / 2), p.npo) + 1),
       1 + pg_temp.r(pg_temp.h(p.s, p.t, 'qua', g), 0, 5), p.nowu - interval '1 year'
FROM seed_params p, generate_series(1, 2 * p.nmu) g"""),
    ("RankingList", """
INSERT INTO "RankingList" (id, "tenantId", "positionId", name, "createdAt", "updatedAt")
SELECT pg_temp.id(p.t, 'rl', g), p.t, pg_temp.id(p.t, 'pos', mod(g - 1, p.npo) + 1),
       'Rangliste ' || g || ' – Saison 2024/25', p.nowu - interval '1 year', p.nowu - interval '7 days'
FROM seed_params p, generate_series(1, p.nrl) g"""),
    ("Ranking", """
INSERT INTO "Ranking" (id, "rankingListId", "musicianId", rank, "createdAt")
SELECT pg_temp.id(p.t, 'rnk', g), pg_temp.id(p.t, 'rl', (g - 1) / p.nrk + 1),
       pg_temp.id(p.t, 'mus', mod(((g - 1) / p.nrk + 1) * 7 + mod(g - 1, p.nrk), p.nmu) + 1),
       mod(g - 1, p.nrk) + 1, p.nowu - interval '1 year'
FROM seed_params p, generate_series(1, p.nrl * p.nrk) g"""),
    # Start dates are local times in the venue's zone; numbers 7 and 8 (mod 50) fall on the 2024 Berlin DST
    # switches (02:30 does not exist on 31 March and exists twice on 27 October).
    ("Project", """
INSERT INTO "Project" (id, "tenantId", name, status, "startDate", "endDate", metadata, "createdAt", "updatedAt")
SELECT pg_temp.id(p.t, 'prj', g), p.t, pg_temp.pick(p.pnames, x.h, 0) || ' ' || g, x.st::"ProjectStatus",
       d.sd, d.sd + make_interval(days => 1 + pg_temp.r(x.h, 1, 10)::int, mins => pg_temp.r(x.h, 2, 600)::int),
       CASE WHEN mod(g, 9) = 5 THEN NULL ELSE jsonb_build_object(
           'venue', jsonb_build_object('name', pg_temp.pick(p.venues, x.h, 3), 'capacity', 300 + pg_temp.r(x.h, 0, 2500),
                                       'geo', jsonb_build_array(pg_temp.r(x.h, 1, 180000) / 1000.0 - 90,
                                                                pg_temp.r(x.h, 2, 360000) / 1000.0 - 180)),
           'timezone', x.tz, 'localStart', to_char(d.sd AT TIME ZONE x.tz, 'YYYY-MM-DD"T"HH24:MI:SS'),
           'tags', jsonb_build_array('season-2024', pg_temp.pick(p.tags, x.h, 2), NULL),
           'budget', jsonb_build_object('currency', 'EUR', 'amount', pg_temp.r(x.h, 3, 10000000) / 100.0,
                                        'approved', mod(g, 2) = 0),
           'note', pg_temp.pick(p.notes, x.h, 1),
           'deep', jsonb_build_object('a', jsonb_build_object('b', jsonb_build_array(1, 'zwei', NULL, true, 3.5e-7))))
       END,
       p.nowu - make_interval(days => 400 + pg_temp.r(x.h, 0, 300)::int), p.nowu - interval '2 days'
FROM seed_params p,
     LATERAL (SELECT g, h, pg_temp.pick(p.tz, h, 2) AS tz,
                     CASE WHEN g <= p.nact THEN 'active' ELSE (ARRAY['completed', 'draft', 'cancelled'])[1 + mod(g, 3)]
                     END AS st
              FROM (SELECT g, pg_temp.h(p.s, p.t, 'prj', g) AS h FROM generate_series(1, p.npr) g OFFSET 0) s) x,
     LATERAL (SELECT CASE WHEN mod(g, 50) = 7 THEN timestamp '2024-03-31 02:30' AT TIME ZONE 'Europe/Berlin'
                          WHEN mod(g, 50) = 8 THEN timestamp '2024-10-27 02:30' AT TIME ZONE 'Europe/Berlin'
                          ELSE (date_trunc('day', p.nowu) + make_interval(hours => 10 + pg_temp.r(x.h, 0, 10)::int,
                                days => CASE x.st WHEN 'active' THEN pg_temp.r(x.h, 1, 70)::int - 10
                                                  WHEN 'completed' THEN -30 - pg_temp.r(x.h, 1, 700)::int
                                                  WHEN 'draft' THEN 30 + pg_temp.r(x.h, 1, 300)::int
                                                  ELSE pg_temp.r(x.h, 1, 400)::int - 200 END)) AT TIME ZONE x.tz
                     END AS sd) d"""),
    ("ProjectNeed", """
INSERT INTO "ProjectNeed" (id, "projectId", "positionId", quantity, "createdAt")
SELECT pg_temp.id(p.t, 'pnd', g), pg_temp.id(p.t, 'prj', (g - 1) / p.nnp + 1),
       pg_temp.id(p.t, 'pos', pg_temp.r(x.h, 0, p.npo) + 1), 1 + pg_temp.r(x.h, 1, 4), p.nowu - interval '300 days'
FROM seed_params p, LATERAL (SELECT g, pg_temp.h(p.s, p.t, 'pnd', g) AS h FROM generate_series(1, p.npr * p.nnp) g OFFSET 0) x"""),
    # Every 17th file (the first one included) is over 4 GB: sizes that do not fit a 32-bit integer.
    ("ProjectNeedFile", """
INSERT INTO "ProjectNeedFile" (id, "projectNeedId", "fileName", "mimeType", size, "storageKey", "createdAt")
SELECT pg_temp.id(p.t, 'pnf', g), pg_temp.id(p.t, 'pnd', mod(g - 1, p.npr * p.nnp) + 1), pg_temp.pick(p.files, x.h, 0),
       pg_temp.pick(p.mimes, x.h, 1), CASE WHEN mod(g, 17) = 1 THEN 5000000000 ELSE 1000 END + pg_temp.r(x.h, 2, 9000000),
       'tenants/' || p.t || '/needs/' || g || '/' || pg_temp.pick(p.files, x.h, 0), p.nowu - interval '200 days'
FROM seed_params p, LATERAL (SELECT g, pg_temp.h(p.s, p.t, 'pnf', g) AS h FROM generate_series(1, p.nnf) g OFFSET 0) x"""),
    ("ProjectFile", """
INSERT INTO "ProjectFile" (id, "projectId", "fileName", "mimeType", size, "storageKey", "createdAt")
SELECT pg_temp.id(p.t, 'pfl', g), pg_temp.id(p.t, 'prj', mod(g - 1, p.npr) + 1), pg_temp.pick(p.files, x.h, 0),
       pg_temp.pick(p.mimes, x.h, 1), CASE WHEN mod(g, 17) = 1 THEN 5000000000 ELSE 1000 END + pg_temp.r(x.h, 2, 9000000),
       'tenants/' || p.t || '/projects/' || g, p.nowu - interval '200 days'
FROM seed_params p, LATERAL (SELECT g, pg_temp.h(p.s, p.t, 'pfl', g) AS h FROM generate_series(1, p.npf) g OFFSET 0) x"""),
    # Requests of active projects were sent in the last 28 days; pending, expired and cancelled ones have
    # no respondedAt.
    ("Request", """
INSERT INTO "Request" (id, "projectNeedId", "musicianId", status, "sentAt", "respondedAt", "createdAt")
SELECT pg_temp.id(p.t, 'req', g), pg_temp.id(p.t, 'pnd', x.nd), pg_temp.id(p.t, 'mus', pg_temp.r(x.h, 1, p.nmu) + 1),
       y.st::"RequestStatus", y.sent,
       CASE WHEN y.st IN ('accepted', 'declined') THEN y.sent + make_interval(mins => 5 + pg_temp.r(x.h, 2, 4320)::int) END,
       y.sent AT TIME ZONE 'UTC'
FROM seed_params p,
     LATERAL (SELECT g, h, (g - 1) / p.nrq + 1 AS nd
              FROM (SELECT g, pg_temp.h(p.s, p.t, 'req', g) AS h FROM generate_series(1, p.npr * p.nnp * p.nrq) g
                    OFFSET 0) s) x,
     LATERAL (SELECT (x.nd - 1) / p.nnp + 1 <= p.nact AS active) a,
     LATERAL (SELECT CASE WHEN a.active THEN p.now - make_interval(secs => 60 + pg_temp.r(x.h, 0, 27 * 86400))
                          ELSE p.now - make_interval(days => 31 + pg_temp.r(x.h, 0, 700)::int) END AS sent,
                     CASE WHEN a.active THEN (ARRAY['pending', 'pending', 'pending', 'accepted', 'accepted',
                                                    'accepted', 'declined', 'declined', 'expired'])[1 + pg_temp.r(x.h, 3, 9)]
                          ELSE (ARRAY['accepted', 'accepted', 'declined', 'expired', 'cancelled'])[1 + pg_temp.r(x.h, 3, 5)]
                     END AS st) y"""),
    ("RequestToken", """
INSERT INTO "RequestToken" (id, "requestId", token, "expiresAt", "usedAt", "createdAt")
SELECT pg_temp.id(p.t, 'tok', g), r.id, pg_temp.h(p.s, p.t, 'tok', g) || pg_temp.h(p.s, p.t, 'tok2', g),
       (r."sentAt" AT TIME ZONE 'UTC') + interval '7 days', r."respondedAt" AT TIME ZONE 'UTC', r."sentAt" AT TIME ZONE 'UTC'
FROM seed_params p CROSS JOIN generate_series(1, p.npr * p.nnp * p.nrq) g JOIN "Request" r ON r.id = pg_temp.id(p.t, 'req', g)"""),
    # Message g belongs to request ((g - 1) mod requests) + 1, later rounds being daily reminders; every 10th
    # is a newsletter with no request, every 20th also with no musician. Messages 1-3 carry 100 KB+ bodies.
    ("CommunicationLog", """
INSERT INTO "CommunicationLog" (id, "tenantId", "requestId", "musicianId", channel, subject, body, metadata,
                                "createdAt")
SELECT pg_temp.id(p.t, 'com', g), p.t, r.id,
       CASE WHEN r.id IS NOT NULL THEN r."musicianId" WHEN mod(g, 20) = 0 THEN NULL
            ELSE pg_temp.id(p.t, 'mus', pg_temp.r(x.h, 0, p.nmu) + 1) END,
       x.ch::"CommunicationChannel", CASE WHEN x.ch = 'sms' THEN NULL ELSE pg_temp.pick(p.subjects, x.h, 1) END,
       CASE WHEN g <= 3 THEN p.big || ' #' || g ELSE pg_temp.pick(p.bodies, x.h, 2) || ' #' || g END,
       CASE WHEN mod(g, 7) = 0 THEN NULL ELSE jsonb_build_object(
           'provider', CASE x.ch WHEN 'sms' THEN 'twilio' ELSE 'postmark' END, 'messageId', x.h,
           'delivery', jsonb_build_object('attempts', 1 + pg_temp.r(x.h, 2, 3), 'bounced', NULL,
                                          'tz', pg_temp.pick(p.tz, x.h, 3))) END,
       COALESCE((r."sentAt" AT TIME ZONE 'UTC') + make_interval(days => ((g - 1) / (p.npr * p.nnp * p.nrq))::int),
                p.nowu - make_interval(mins => pg_temp.r(x.h, 3, 1051200)::int))
FROM seed_params p
CROSS JOIN LATERAL (SELECT g, h, CASE WHEN pg_temp.r(h, 1, 4) = 0 THEN 'sms' ELSE 'email' END AS ch,
                           CASE WHEN mod(g, 10) <> 0 THEN mod(g - 1, p.npr * p.nnp * p.nrq) + 1 END AS rq
                    FROM (SELECT g, pg_temp.h(p.s, p.t, 'com', g) AS h FROM generate_series(1, p.ncl) g OFFSET 0) s) x
LEFT JOIN "Request" r ON r.id = pg_temp.id(p.t, 'req', x.rq)"""),
    ("EmailTemplate", """
INSERT INTO "EmailTemplate" (id, "tenantId", name, subject, body, "createdAt", "updatedAt")
SELECT pg_temp.id(p.t, 'tpl', g), p.t,
       p.tnames[1 + mod(g - 1, cardinality(p.tnames))]
       || CASE WHEN g > cardinality(p.tnames) THEN ' v' || ((g - 1) / cardinality(p.tnames) + 1) ELSE '' END,
       pg_temp.pick(p.subjects, pg_temp.h(p.s, p.t, 'tpl', g), 0),
       CASE WHEN g = 1 THEN p.big ELSE pg_temp.pick(p.bodies, pg_temp.h(p.s, p.t, 'tpl', g), 1) END,
       p.nowu - interval '2 years', p.nowu - make_interval(days => g)
FROM seed_params p CROSS JOIN generate_series(1, p.net) g"""),
    # entityId names rows that may not exist (deleted since): AuditLog keeps ids, not references.
    ("AuditLog", """
INSERT INTO "AuditLog" (id, "tenantId", "userId", action, entity, "entityId", changes, "createdAt")
SELECT pg_temp.id(p.t, 'aud', g), p.t,
       CASE WHEN mod(g, 8) = 0 THEN NULL ELSE pg_temp.id(p.t, 'usr', pg_temp.r(x.h, 0, p.nus) + 1) END,
       (ARRAY['create', 'update', 'delete', 'login', 'export', 'send'])[1 + pg_temp.r(x.h, 1, 6)],
       (ARRAY['Musician', 'Project', 'Request', 'RankingList'])[x.k],
       pg_temp.id(p.t, (ARRAY['mus', 'prj', 'req', 'rl'])[x.k], 1 + pg_temp.r(x.h, 2, 1000)),
       CASE WHEN mod(g, 11) = 0 THEN NULL ELSE jsonb_build_object(
           'before', jsonb_build_object('status', 'pending', 'rank', pg_temp.r(x.h, 2, 50), 'note', NULL),
           'after', jsonb_build_object('status', 'accepted', 'rank', pg_temp.r(x.h, 3, 50),
                                       'note', pg_temp.pick(p.notes, x.h, 3)),
           'ip', '192.0.2.' || pg_temp.r(x.h, 3, 255)) END,
       p.nowu - make_interval(mins => pg_temp.r(x.h, 3, 1051200)::int)
FROM seed_params p,
     LATERAL (SELECT g, pg_temp.h(p.s, p.t, 'aud', g) AS h, 1 + mod(g, 4)::int AS k
              FROM generate_series(1, p.nau) g OFFSET 0) x"""),
    ("BackgroundJob", """
INSERT INTO "BackgroundJob" (id, "tenantId", kind, status, payload, error, "startedAt", "finishedAt", "createdAt")
SELECT pg_temp.id(p.t, 'job', g), p.t,
       (ARRAY['send-requests', 'expire-tokens', 'export-pdf', 'sync-calendar'])[1 + pg_temp.r(x.h, 0, 4)],
       x.st::"JobStatus", CASE WHEN mod(g, 3) = 0 THEN NULL ELSE jsonb_build_object('batch', g, 'dryRun', false) END,
       CASE WHEN x.st = 'failed' THEN 'Traceback:' || chr(10) || '  File "worker.py", line 42' || chr(10) || 'KeyError: ''tenantId''' END,
       y.started, CASE WHEN x.st <> 'running' THEN y.started + make_interval(secs => 1 + pg_temp.r(x.h, 2, 900)) END,
       y.started - interval '1 second'
FROM seed_params p,
     LATERAL (SELECT g, pg_temp.h(p.s, p.t, 'job', g) AS h,
                     CASE WHEN g <= p.nrun THEN 'running' WHEN mod(g, 5) = 0 THEN 'failed' ELSE 'done' END AS st
              FROM generate_series(1, p.njb) g OFFSET 0) x,
     LATERAL (SELECT CASE WHEN x.st = 'running' THEN p.nowu - interval '2 minutes'
                     ELSE p.nowu - make_interval(hours => 1 + pg_temp.r(x.h, 1, 2000)::int) END AS started) y"""),
    # The newest backup of every tenant is six hours old, so the pre-check's "recent backup" rule passes.
    ("Backup", """
INSERT INTO "Backup" (id, "tenantId", kind, "sizeBytes", "storageKey", "createdAt")
SELECT pg_temp.id(p.t, 'bak', g), p.t, (ARRAY['nightly', 'manual', 'pre-deploy'])[1 + mod(g - 1, 3)],
       3000000000 + pg_temp.r(pg_temp.h(p.s, p.t, 'bak', g), 0, 100000000),
       's3://stagesub-backups/' || p.t || '/' || g, p.nowu - interval '6 hours' - make_interval(days => g - 1)
FROM seed_params p, generate_series(1, p.nbk) g"""),
)
