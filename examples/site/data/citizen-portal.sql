-- Generated, realistic-looking data for the citizen-portal example database: about 100k rows
-- over four tables. Deterministic counts (no random()), so what the plan checks is stable;
-- application times end at the moment of loading, so the drill can measure the data's age.
CREATE TABLE citizens (
  id integer PRIMARY KEY,
  personal_code text NOT NULL UNIQUE,
  full_name text NOT NULL,
  email text NOT NULL,
  registered_at timestamptz NOT NULL
);
CREATE TABLE applications (
  id integer PRIMARY KEY,
  citizen_id integer NOT NULL REFERENCES citizens(id),
  kind text NOT NULL,
  status text NOT NULL,
  submitted_at timestamptz NOT NULL
);
CREATE TABLE payments (
  id integer PRIMARY KEY,
  application_id integer NOT NULL REFERENCES applications(id),
  citizen_id integer NOT NULL REFERENCES citizens(id),
  amount_eur numeric(10,2) NOT NULL,
  paid_at timestamptz NOT NULL
);
CREATE TABLE audit_log (
  id bigint PRIMARY KEY,
  actor text NOT NULL,
  action text NOT NULL,
  at timestamptz NOT NULL
);
INSERT INTO citizens
SELECT g, lpad((100000 + g)::text, 6, '0') || '-' || lpad((g % 99999)::text, 5, '0'),
       (ARRAY['Anna','Jānis','Līga','Pēteris','Ilze','Andris','Kristīne','Mārtiņš'])[1 + g % 8] || ' ' ||
       (ARRAY['Bērziņa','Kalniņš','Ozola','Liepiņš','Krūmiņa','Zariņš'])[1 + g % 6],
       'resident' || g || '@example.invalid',
       timestamptz '2020-01-01 00:00:00+00' + (g * interval '37 minutes')
FROM generate_series(1, 30000) AS g;
INSERT INTO applications
SELECT g, 1 + (g * 7) % 30000,
       (ARRAY['parking-permit','building-permit','waste-contract','school-place','event-permit'])[1 + g % 5],
       (ARRAY['approved','submitted','rejected'])[1 + g % 3],
       now() - (g * interval '13 minutes')   -- the newest application is 13 minutes old
FROM generate_series(1, 60000) AS g;
INSERT INTO payments
SELECT g, g * 3, 1 + (g * 21) % 30000, (5 + (g % 200))::numeric(10,2),
       timestamptz '2024-01-02 00:00:00+00' + (g * interval '39 minutes')
FROM generate_series(1, 20000) AS g;
INSERT INTO audit_log
SELECT g, 'svc-portal', (ARRAY['login','submit','pay','view'])[1 + g % 4],
       timestamptz '2024-01-01 00:00:00+00' + (g * interval '5 minutes')
FROM generate_series(1, 10000) AS g;
