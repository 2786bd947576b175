-- Three organisations (1, 2, 3); organisation 1 is the one the tests move.
INSERT INTO org_settings (id, theme) VALUES (1, 'dark'), (2, 'light'), (3, 'sepia');
SELECT setval('org_settings_id_seq', 3);
INSERT INTO organisation VALUES (1, 'Örchester Eins', 1), (2, 'Two''s Company', 2), (3, 'Trio', 3);
INSERT INTO country VALUES ('DE', 'Germany'), ('FR', 'France'), ('JP', 'Japan'), ('NO', 'Norway');
INSERT INTO currency VALUES ('EUR', '€'), ('USD', '$'), ('NOK', 'kr');
INSERT INTO changelog (note) VALUES ('v1'), ('v2');
INSERT INTO app_user (email, org_id, invited_by, country_code)
SELECT 'u' || g || '@org' || (g % 3 + 1), g % 3 + 1, NULL, (ARRAY['DE','FR','JP'])[g % 3 + 1]
FROM generate_series(1, 30) g;
-- user 31 belongs to organisation 2 and is invited by one of its users; user 32 has no organisation
INSERT INTO app_user (email, org_id, invited_by) VALUES ('guest@two', 2, 1), ('nobody@x', NULL, NULL);
-- a chain of invitations inside organisation 1 (ids 3, 6, 9, ...): copied rows pull the chain recursively
UPDATE app_user SET invited_by = id - 3 WHERE id % 3 = 0 AND id > 3 AND id <= 30;
INSERT INTO session (user_id, token) SELECT id, md5(id::text) FROM app_user;
INSERT INTO team SELECT o, t, 'team ' || o || '/' || t FROM generate_series(1, 3) o, generate_series(1, 4) t;
INSERT INTO document_data (payload, mime) SELECT decode(md5(g::text), 'hex'), 'application/pdf'
FROM generate_series(1, 60) g;
INSERT INTO document (team_org, team_no, title, owner_id, document_data_id)
SELECT g % 3 + 1, g % 4 + 1, 'doc ' || g || E' \\ "quoted" ''x''',
       CASE WHEN g % 7 = 0 THEN NULL ELSE 3 * ((g / 3) % 9 + 1) + g % 3 END, g FROM generate_series(1, 60) g;
-- document_data 61 is shared by nobody; 62 is referenced by no document (an orphan blob)
INSERT INTO document_data (payload, mime) VALUES (NULL, 'text/plain'), ('\x00ff', NULL);
INSERT INTO dataroom SELECT 'room-' || g, CASE WHEN g = 9 THEN NULL ELSE g % 3 + 1 END, 'room ' || g
FROM generate_series(1, 9) g;
INSERT INTO agreement SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, g % 3 + 1,
       jsonb_build_object('n', g, 'nested', jsonb_build_object('ü', array[g, g + 1]))
FROM generate_series(1, 12) g;
-- polymorphic links: exactly one of the three parents set, sometimes plus the direct team_id
INSERT INTO link (document_id, dataroom_id, agreement_id, team_id, slug)
SELECT CASE WHEN g % 3 = 0 THEN (g % 60) + 1 END,
       CASE WHEN g % 3 = 1 THEN 'room-' || ((g % 8) + 1) END,
       CASE WHEN g % 3 = 2 THEN ('00000000-0000-0000-0000-' || lpad(((g % 12) + 1)::text, 12, '0'))::uuid END,
       NULL::integer,
       'link-' || g
FROM generate_series(1, 90) g;
-- a link with no parent at all (orphan), and one only through the nullable direct column
INSERT INTO link (slug) VALUES ('orphan-link');
INSERT INTO link (team_id, slug) VALUES (1, 'team-only-link');
-- a link to dataroom 9, which has no organisation: an orphan through a nullable chain
INSERT INTO link (dataroom_id, slug) VALUES ('room-9', 'orphan-room-link');
INSERT INTO view (link_id, viewer_id, country_code, viewed_at)
SELECT (g % 93) + 1, NULL,
       CASE WHEN g % 7 = 0 THEN NULL ELSE (ARRAY['DE','FR','JP','NO'])[g % 4 + 1] END,
       timestamptz '2024-01-01 10:00+01' + g * interval '1 hour'
FROM generate_series(1, 400) g;
-- viewers come from the document's own organisation (its owner): references stay inside one tenant
UPDATE view v SET viewer_id = d.owner_id FROM link l JOIN document d ON d.id = l.document_id
WHERE l.id = v.link_id AND v.id % 4 <> 0;
-- folder trees per organisation: roots then children then grandchildren
INSERT INTO folder (org_id, parent_id, name) SELECT o, NULL, 'root ' || o FROM generate_series(1, 3) o;
INSERT INTO folder (org_id, parent_id, name) SELECT o, o, 'child ' || o || '/' || c
FROM generate_series(1, 3) o, generate_series(1, 3) c;
INSERT INTO folder (org_id, parent_id, name) SELECT f.org_id, f.id, 'grand ' || f.id FROM folder f WHERE f.parent_id IS NOT NULL;
-- comments: top-level comments on documents, replies that carry no document_id (reached only recursively)
INSERT INTO comment (document_id, reply_to, body) SELECT (g % 60) + 1, NULL, 'top ' || g FROM generate_series(1, 30) g;
INSERT INTO comment (document_id, reply_to, body) SELECT NULL, g, 'reply to ' || g FROM generate_series(1, 30) g;
INSERT INTO comment (document_id, reply_to, body) SELECT NULL, 30 + g, 'reply² ' || g FROM generate_series(1, 30) g;
INSERT INTO comment (document_id, reply_to, body) VALUES (NULL, NULL, 'orphan comment');
INSERT INTO audit ("tenantId", action, detail) SELECT g % 3 + 1, 'act' || g, jsonb_build_object('g', g)
FROM generate_series(1, 300) g;
INSERT INTO audit ("tenantId", action) VALUES (NULL, 'system'), (99, 'deleted tenant');
INSERT INTO invoice (org_id, currency, amount) SELECT g % 3 + 1, (ARRAY['EUR','USD'])[g % 2 + 1], g * 10.5
FROM generate_series(1, 40) g;
UPDATE team t SET lead_doc = (SELECT min(d.id) FROM document d WHERE d.team_org = t.org_id AND d.team_no = t.team_no);
