-- A document-sharing app, not StageSub: snake_case, composite keys, polymorphic nullable parents,
-- one-to-one rows owned from the parent side, self-references, an id-only tenant column, a lookup table.
CREATE TABLE org_settings (id serial PRIMARY KEY, theme text NOT NULL DEFAULT 'light');
CREATE TABLE organisation (id integer PRIMARY KEY, name text NOT NULL,
                           settings_id integer UNIQUE REFERENCES org_settings (id));
CREATE TABLE country (code char(2) PRIMARY KEY, name text NOT NULL);
CREATE TABLE currency (code text PRIMARY KEY, symbol text);
CREATE TABLE changelog (id serial PRIMARY KEY, note text);
CREATE TABLE app_user (id serial PRIMARY KEY, email text NOT NULL UNIQUE,
                       org_id integer REFERENCES organisation (id), invited_by integer REFERENCES app_user (id),
                       country_code char(2) REFERENCES country (code));
CREATE TABLE session (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
                      token text NOT NULL);
CREATE TABLE team (org_id integer NOT NULL REFERENCES organisation (id), team_no integer NOT NULL, name text NOT NULL,
                   PRIMARY KEY (org_id, team_no));
CREATE TABLE document_data (id serial PRIMARY KEY, payload bytea, mime text);
CREATE TABLE document (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, team_org integer NOT NULL,
                       team_no integer NOT NULL, title text NOT NULL, owner_id integer REFERENCES app_user (id),
                       document_data_id integer UNIQUE REFERENCES document_data (id),
                       FOREIGN KEY (team_org, team_no) REFERENCES team (org_id, team_no));
CREATE TABLE dataroom (id text PRIMARY KEY, "organizationId" integer REFERENCES organisation (id), name text);
CREATE TABLE agreement (id uuid PRIMARY KEY, org_id integer NOT NULL REFERENCES organisation (id), terms jsonb);
CREATE TABLE link (id serial PRIMARY KEY, document_id bigint REFERENCES document (id),
                   dataroom_id text REFERENCES dataroom (id), agreement_id uuid REFERENCES agreement (id),
                   team_id integer REFERENCES organisation (id), slug text NOT NULL UNIQUE);
CREATE TABLE view (id bigserial PRIMARY KEY, link_id integer NOT NULL REFERENCES link (id),
                   viewer_id integer REFERENCES app_user (id), country_code char(2) REFERENCES country (code),
                   viewed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE folder (id serial PRIMARY KEY, org_id integer NOT NULL REFERENCES organisation (id),
                     parent_id integer REFERENCES folder (id), name text NOT NULL);
CREATE TABLE comment (id serial PRIMARY KEY, document_id bigint REFERENCES document (id),
                      reply_to integer REFERENCES comment (id), body text);
CREATE TABLE audit (id bigserial PRIMARY KEY, "tenantId" integer, action text NOT NULL, detail jsonb);
CREATE TABLE invoice (id serial PRIMARY KEY, org_id integer NOT NULL REFERENCES organisation (id),
                      currency text NOT NULL REFERENCES currency (code), amount numeric(12, 2));
-- A cycle: a team's lead document belongs to the team (document -> team is NOT NULL, team -> document nullable).
ALTER TABLE team ADD COLUMN lead_doc bigint REFERENCES document (id);
