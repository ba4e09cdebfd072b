-- An Odoo-17-shaped database for walvault's end-to-end tests.
--
-- Not an Odoo dump: a hand-written subset of the tables an Odoo 17
-- instance (base, mail, crm, hr, hr_recruitment, sms, payment, delivery,
-- iap, auth_oauth, google_calendar, microsoft_calendar, fetchmail,
-- base_automation) creates, with Odoo 17's column names and types for the
-- columns that matter to backups, filestore restores, neutralization and
-- anonymisation, and seed rows that look like a small company's data.
-- Odoo 17 specifics kept on purpose: translated fields are jsonb
-- ({"en_US": ...}), res_partner has no stored display_name, employees'
-- private address lives on hr_employee (private_*), calendar sync tokens
-- live on res_users_settings, payment_provider.state is
-- disabled/enabled/test, server actions can be webhooks.
--
-- Every personal value below is invented and distinctive (so that a test
-- can grep a whole dump for it).

SET client_min_messages = warning;

-- ---------------------------------------------------------------- base

CREATE TABLE ir_module_module (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    category_id integer,
    shortdesc jsonb,
    summary jsonb,
    description jsonb,
    author varchar,
    website varchar,
    state varchar(16),
    latest_version varchar,
    published_version varchar,
    license varchar(32),
    application boolean DEFAULT false,
    auto_install boolean DEFAULT false,
    demo boolean DEFAULT false,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT ir_module_module_name_uniq UNIQUE (name)
);

CREATE TABLE ir_model_data (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    module varchar NOT NULL,
    model varchar NOT NULL,
    res_id integer,
    noupdate boolean DEFAULT false,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT ir_model_data_name_nospaces CHECK (name::text !~~ '% %'::text)
);
CREATE UNIQUE INDEX ir_model_data_module_name_uniq_index ON ir_model_data (module, name);

CREATE TABLE ir_config_parameter (
    id serial PRIMARY KEY,
    key varchar NOT NULL,
    value text NOT NULL,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT ir_config_parameter_key_uniq UNIQUE (key)
);

CREATE TABLE res_company (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    partner_id integer NOT NULL,
    currency_id integer NOT NULL,
    sequence integer,
    parent_id integer,
    email varchar,
    phone varchar,
    mobile varchar,
    company_registry varchar,
    active boolean,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT res_company_name_uniq UNIQUE (name)
);

CREATE TABLE res_partner_category (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    color integer,
    parent_id integer,
    parent_path varchar,
    active boolean,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE res_partner (
    id serial PRIMARY KEY,
    company_id integer,
    create_date timestamp without time zone,
    name varchar,
    complete_name varchar,
    title integer,
    parent_id integer REFERENCES res_partner(id) ON DELETE SET NULL,
    user_id integer,
    state_id integer,
    country_id integer,
    industry_id integer,
    color integer,
    commercial_partner_id integer,
    create_uid integer,
    write_uid integer,
    ref varchar,
    lang varchar,
    tz varchar,
    vat varchar,
    company_registry varchar,
    website varchar,
    function varchar,
    type varchar,
    street varchar,
    street2 varchar,
    zip varchar,
    city varchar,
    email varchar,
    phone varchar,
    mobile varchar,
    commercial_company_name varchar,
    company_name varchar,
    barcode varchar,
    date date,
    comment text,
    partner_latitude numeric,
    partner_longitude numeric,
    active boolean,
    employee boolean,
    is_company boolean,
    partner_share boolean,
    write_date timestamp without time zone,
    message_bounce integer,
    email_normalized varchar,
    signup_type varchar,
    phone_sanitized varchar,
    ocn_token varchar,
    calendar_last_notif_ack timestamp without time zone,
    CONSTRAINT res_partner_check_name CHECK (((type)::text = 'contact'::text AND name IS NOT NULL) OR (type)::text <> 'contact'::text)
);

CREATE TABLE res_partner_res_partner_category_rel (
    category_id integer NOT NULL REFERENCES res_partner_category(id) ON DELETE CASCADE,
    partner_id integer NOT NULL REFERENCES res_partner(id) ON DELETE CASCADE,
    PRIMARY KEY (category_id, partner_id)
);

CREATE TABLE res_users (
    id serial PRIMARY KEY,
    company_id integer NOT NULL REFERENCES res_company(id),
    partner_id integer NOT NULL REFERENCES res_partner(id),
    active boolean DEFAULT true,
    create_date timestamp without time zone,
    login varchar NOT NULL,
    password varchar,
    action_id integer,
    create_uid integer,
    write_uid integer,
    signature text,
    share boolean,
    write_date timestamp without time zone,
    totp_secret varchar,
    notification_type varchar NOT NULL,
    odoobot_state varchar,
    odoobot_failed boolean,
    sale_team_id integer,
    karma integer,
    rank_id integer,
    oauth_provider_id integer,
    oauth_uid varchar,
    oauth_access_token varchar,
    CONSTRAINT res_users_login_key UNIQUE (login),
    CONSTRAINT res_users_uniq_users_oauth_provider_oauth_uid UNIQUE (oauth_provider_id, oauth_uid)
);

CREATE TABLE res_users_settings (
    id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES res_users(id) ON DELETE CASCADE,
    is_discuss_sidebar_category_channel_open boolean,
    is_discuss_sidebar_category_chat_open boolean,
    push_to_talk_key varchar,
    use_push_to_talk boolean,
    voice_active_duration integer,
    google_calendar_rtoken varchar,
    google_calendar_token varchar,
    google_calendar_token_validity timestamp without time zone,
    google_calendar_sync_token varchar,
    google_calendar_cal_id varchar,
    google_synchronization_stopped boolean,
    microsoft_calendar_rtoken varchar,
    microsoft_calendar_token varchar,
    microsoft_calendar_token_validity timestamp without time zone,
    microsoft_calendar_sync_token varchar,
    microsoft_synchronization_stopped boolean,
    microsoft_last_sync_date timestamp without time zone,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT res_users_settings_unique_user_id UNIQUE (user_id)
);

CREATE TABLE res_partner_bank (
    id serial PRIMARY KEY,
    active boolean,
    acc_number varchar NOT NULL,
    sanitized_acc_number varchar,
    acc_holder_name varchar,
    partner_id integer NOT NULL REFERENCES res_partner(id) ON DELETE CASCADE,
    allow_out_payment boolean,
    bank_id integer,
    sequence integer,
    currency_id integer,
    company_id integer,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT res_partner_bank_unique_number UNIQUE (sanitized_acc_number, partner_id)
);

CREATE TABLE ir_act_server (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    type varchar NOT NULL DEFAULT 'ir.actions.server',
    usage varchar NOT NULL,
    state varchar NOT NULL,
    sequence integer,
    model_id integer NOT NULL,
    model_name varchar,
    code text,
    crud_model_id integer,
    link_field_id integer,
    update_field_id integer,
    update_path varchar,
    value text,
    evaluation_type varchar,
    webhook_url varchar,
    base_automation_id integer,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE ir_cron (
    id serial PRIMARY KEY,
    ir_actions_server_id integer NOT NULL REFERENCES ir_act_server(id) ON DELETE RESTRICT,
    cron_name varchar,
    user_id integer NOT NULL,
    active boolean,
    interval_number integer,
    interval_type varchar,
    numbercall integer,
    doall boolean,
    nextcall timestamp without time zone NOT NULL,
    lastcall timestamp without time zone,
    priority integer,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE ir_mail_server (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    from_filter varchar,
    smtp_host varchar,
    smtp_port integer NOT NULL,
    smtp_authentication varchar NOT NULL,
    smtp_user varchar,
    smtp_pass varchar,
    smtp_encryption varchar NOT NULL,
    smtp_ssl_certificate bytea,
    smtp_ssl_private_key bytea,
    smtp_debug boolean,
    sequence integer,
    active boolean,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE ir_attachment (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    description text,
    res_model varchar,
    res_field varchar,
    res_id integer,
    company_id integer,
    type varchar NOT NULL,
    url varchar(1024),
    public boolean,
    access_token varchar,
    db_datas bytea,
    store_fname varchar,
    file_size integer,
    checksum varchar(40),
    mimetype varchar,
    index_content text,
    original_id integer,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);
CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id);
CREATE INDEX ir_attachment_store_fname_index ON ir_attachment (store_fname);
CREATE INDEX ir_attachment_checksum_index ON ir_attachment (checksum);

-- ------------------------------------------------------ base_automation

CREATE TABLE base_automation (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    description text,
    model_id integer NOT NULL,
    active boolean,
    trigger varchar NOT NULL,
    trg_selection_field_id integer,
    trg_field_ref integer,
    trg_date_id integer,
    trg_date_range integer,
    trg_date_range_type varchar,
    filter_domain varchar,
    filter_pre_domain varchar,
    on_change_field_ids integer,
    webhook_uuid varchar,
    log_webhook_calls boolean,
    record_getter varchar,
    last_run timestamp without time zone,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- ----------------------------------------------------------------- mail

CREATE TABLE mail_template (
    id serial PRIMARY KEY,
    name jsonb,
    model_id integer,
    model varchar,
    subject jsonb,
    email_from varchar,
    use_default_to boolean,
    email_to varchar,
    partner_to varchar,
    email_cc varchar,
    reply_to varchar,
    body_html jsonb,
    mail_server_id integer REFERENCES ir_mail_server(id) ON DELETE SET NULL,
    scheduled_date varchar,
    auto_delete boolean,
    lang varchar,
    template_category varchar,
    description jsonb,
    active boolean,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE mail_message (
    id serial PRIMARY KEY,
    subject varchar,
    date timestamp without time zone,
    body text,
    model varchar,
    res_id integer,
    record_name varchar,
    record_company_id integer,
    message_type varchar NOT NULL,
    subtype_id integer,
    mail_activity_type_id integer,
    is_internal boolean,
    author_id integer REFERENCES res_partner(id) ON DELETE SET NULL,
    author_guest_id integer,
    email_from varchar,
    reply_to varchar,
    reply_to_force_new boolean,
    message_id varchar,
    mail_server_id integer REFERENCES ir_mail_server(id) ON DELETE SET NULL,
    email_layout_xmlid varchar,
    email_add_signature boolean,
    parent_id integer REFERENCES mail_message(id) ON DELETE SET NULL,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);
CREATE INDEX mail_message_model_res_id_idx ON mail_message (model, res_id);
CREATE INDEX mail_message_message_id_index ON mail_message (message_id);

CREATE TABLE mail_message_res_partner_rel (
    mail_message_id integer NOT NULL REFERENCES mail_message(id) ON DELETE CASCADE,
    res_partner_id integer NOT NULL REFERENCES res_partner(id) ON DELETE CASCADE,
    PRIMARY KEY (mail_message_id, res_partner_id)
);

CREATE TABLE mail_tracking_value (
    id serial PRIMARY KEY,
    field_id integer NOT NULL,
    old_value_integer integer,
    old_value_float double precision,
    old_value_char varchar,
    old_value_text text,
    old_value_datetime timestamp without time zone,
    new_value_integer integer,
    new_value_float double precision,
    new_value_char varchar,
    new_value_text text,
    new_value_datetime timestamp without time zone,
    currency_id integer,
    mail_message_id integer NOT NULL REFERENCES mail_message(id) ON DELETE CASCADE,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE mail_mail (
    id serial PRIMARY KEY,
    mail_message_id integer NOT NULL REFERENCES mail_message(id) ON DELETE CASCADE,
    body_html text,
    "references" text,
    headers text,
    is_notification boolean,
    email_to text,
    email_cc varchar,
    state varchar,
    auto_delete boolean,
    failure_type varchar,
    failure_reason text,
    scheduled_date timestamp without time zone,
    fetchmail_server_id integer,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE mail_mail_res_partner_rel (
    mail_mail_id integer NOT NULL REFERENCES mail_mail(id) ON DELETE CASCADE,
    res_partner_id integer NOT NULL REFERENCES res_partner(id) ON DELETE CASCADE,
    PRIMARY KEY (mail_mail_id, res_partner_id)
);

CREATE TABLE fetchmail_server (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    active boolean,
    state varchar,
    server varchar,
    port integer,
    server_type varchar NOT NULL,
    is_ssl boolean,
    attach boolean,
    original boolean,
    date timestamp without time zone,
    "user" varchar,
    password varchar,
    object_id integer,
    priority integer,
    configuration text,
    script varchar,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- ------------------------------------------------------------------ sms

CREATE TABLE sms_sms (
    id serial PRIMARY KEY,
    uuid varchar,
    number varchar,
    body text,
    partner_id integer REFERENCES res_partner(id) ON DELETE SET NULL,
    mail_message_id integer REFERENCES mail_message(id) ON DELETE SET NULL,
    state varchar NOT NULL,
    failure_type varchar,
    to_delete boolean,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- ------------------------------------------------------------------- hr

CREATE TABLE resource_resource (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    active boolean,
    company_id integer,
    resource_type varchar NOT NULL,
    user_id integer REFERENCES res_users(id) ON DELETE SET NULL,
    time_efficiency double precision NOT NULL,
    calendar_id integer,
    tz varchar NOT NULL,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE hr_employee (
    id serial PRIMARY KEY,
    resource_id integer NOT NULL REFERENCES resource_resource(id) ON DELETE RESTRICT,
    company_id integer NOT NULL REFERENCES res_company(id),
    resource_calendar_id integer,
    message_main_attachment_id integer,
    color integer,
    department_id integer,
    job_id integer,
    address_id integer REFERENCES res_partner(id) ON DELETE SET NULL,
    work_contact_id integer REFERENCES res_partner(id) ON DELETE SET NULL,
    work_location_id integer,
    user_id integer REFERENCES res_users(id) ON DELETE SET NULL,
    parent_id integer REFERENCES hr_employee(id) ON DELETE SET NULL,
    coach_id integer REFERENCES hr_employee(id) ON DELETE SET NULL,
    private_state_id integer,
    private_country_id integer,
    country_id integer,
    children integer,
    country_of_birth integer,
    bank_account_id integer REFERENCES res_partner_bank(id) ON DELETE SET NULL,
    distance_home_work integer,
    km_home_work integer,
    departure_reason_id integer,
    name varchar,
    job_title varchar,
    work_phone varchar,
    mobile_phone varchar,
    work_email varchar,
    private_street varchar,
    private_street2 varchar,
    private_city varchar,
    private_zip varchar,
    private_phone varchar,
    private_email varchar,
    lang varchar,
    gender varchar,
    marital varchar,
    spouse_complete_name varchar,
    place_of_birth varchar,
    ssnid varchar,
    sinid varchar,
    identification_id varchar,
    passport_id varchar,
    permit_no varchar,
    visa_no varchar,
    certificate varchar,
    study_field varchar,
    study_school varchar,
    emergency_contact varchar,
    emergency_phone varchar,
    distance_home_work_unit varchar NOT NULL DEFAULT 'kilometers',
    employee_type varchar NOT NULL,
    barcode varchar,
    pin varchar,
    private_car_plate varchar,
    spouse_birthdate date,
    birthday date,
    visa_expire date,
    work_permit_expiration_date date,
    departure_date date,
    employee_properties jsonb,
    additional_note text,
    notes text,
    departure_description text,
    active boolean,
    is_flexible boolean,
    is_fully_flexible boolean,
    work_permit_scheduled_activity boolean,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT hr_employee_barcode_uniq UNIQUE (barcode),
    CONSTRAINT hr_employee_user_uniq UNIQUE (user_id, company_id)
);

CREATE TABLE hr_applicant (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    partner_id integer REFERENCES res_partner(id) ON DELETE SET NULL,
    partner_name varchar,
    email_from varchar(128),
    email_normalized varchar,
    email_cc varchar,
    partner_phone varchar(32),
    partner_phone_sanitized varchar,
    partner_mobile varchar(32),
    partner_mobile_sanitized varchar,
    linkedin_profile varchar,
    description text,
    job_id integer,
    stage_id integer,
    company_id integer,
    user_id integer,
    kanban_state varchar NOT NULL,
    active boolean,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- ------------------------------------------------------------------ crm

CREATE TABLE crm_lead (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    user_id integer,
    team_id integer,
    company_id integer,
    partner_id integer REFERENCES res_partner(id) ON DELETE SET NULL,
    description text,
    active boolean,
    type varchar NOT NULL,
    priority varchar,
    stage_id integer,
    email_from varchar,
    email_normalized varchar,
    email_cc text,
    partner_name varchar,
    contact_name varchar,
    function varchar,
    website varchar,
    street varchar,
    street2 varchar,
    zip varchar,
    city varchar,
    state_id integer,
    country_id integer,
    phone varchar,
    mobile varchar,
    phone_sanitized varchar,
    lang_id integer,
    expected_revenue numeric,
    probability double precision,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- ------------------------------------------ payment, delivery, iap, oauth

CREATE TABLE payment_provider (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    code varchar NOT NULL,
    state varchar NOT NULL,
    sequence integer,
    company_id integer NOT NULL REFERENCES res_company(id),
    is_published boolean,
    allow_tokenization boolean,
    capture_manually boolean,
    allow_express_checkout boolean,
    module_id integer,
    maximum_amount numeric,
    pre_msg jsonb,
    pending_msg jsonb,
    auth_msg jsonb,
    done_msg jsonb,
    cancel_msg jsonb,
    stripe_publishable_key varchar,
    stripe_secret_key varchar,
    stripe_webhook_secret varchar,
    paypal_email_account varchar,
    paypal_pdt_token varchar,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE delivery_carrier (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    active boolean,
    sequence integer,
    delivery_type varchar NOT NULL,
    integration_level varchar,
    prod_environment boolean,
    debug_logging boolean,
    company_id integer,
    product_id integer NOT NULL,
    margin double precision,
    fixed_margin double precision,
    fixed_price numeric,
    free_over boolean,
    amount numeric,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE iap_account (
    id serial PRIMARY KEY,
    service_name varchar,
    account_token varchar,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE auth_oauth_provider (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    client_id varchar,
    auth_endpoint varchar NOT NULL,
    scope varchar,
    validation_endpoint varchar NOT NULL,
    data_endpoint varchar,
    enabled boolean,
    css_class varchar,
    body varchar NOT NULL,
    sequence integer,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- ================================================================ rows

INSERT INTO ir_module_module (name, shortdesc, author, state, latest_version, license, application, create_date, write_date) VALUES
    ('base', '{"en_US": "Base"}', 'Odoo S.A.', 'installed', '17.0.1.3', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('web', '{"en_US": "Web"}', 'Odoo S.A.', 'installed', '17.0.1.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('mail', '{"en_US": "Discuss"}', 'Odoo S.A.', 'installed', '17.0.1.15', 'LGPL-3', true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('base_automation', '{"en_US": "Automation Rules"}', 'Odoo S.A.', 'installed', '17.0.1.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('fetchmail', '{"en_US": "Fetchmail"}', 'Odoo S.A.', 'installed', '17.0.1.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('sms', '{"en_US": "SMS gateway"}', 'Odoo S.A.', 'installed', '17.0.2.5', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('iap', '{"en_US": "In-App Purchases"}', 'Odoo S.A.', 'installed', '17.0.1.1', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('auth_oauth', '{"en_US": "OAuth2 Authentication"}', 'Odoo S.A.', 'installed', '17.0.1.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('google_calendar', '{"en_US": "Google Calendar"}', 'Odoo S.A.', 'installed', '17.0.1.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('microsoft_calendar', '{"en_US": "Outlook Calendar"}', 'Odoo S.A.', 'installed', '17.0.1.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('crm', '{"en_US": "CRM"}', 'Odoo S.A.', 'installed', '17.0.1.9', 'LGPL-3', true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('hr', '{"en_US": "Employees"}', 'Odoo S.A.', 'installed', '17.0.1.1', 'LGPL-3', true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('hr_recruitment', '{"en_US": "Recruitment"}', 'Odoo S.A.', 'installed', '17.0.1.1', 'LGPL-3', true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('payment', '{"en_US": "Payment Engine"}', 'Odoo S.A.', 'installed', '17.0.2.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('payment_stripe', '{"en_US": "Payment Provider: Stripe"}', 'Odoo S.A.', 'installed', '17.0.2.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('payment_paypal', '{"en_US": "Payment Provider: Paypal"}', 'Odoo S.A.', 'installed', '17.0.2.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('delivery', '{"en_US": "Delivery Costs"}', 'Odoo S.A.', 'installed', '17.0.1.0', 'LGPL-3', false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('account', '{"en_US": "Invoicing"}', 'Odoo S.A.', 'installed', '17.0.1.2', 'LGPL-3', true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('website', '{"en_US": "Website"}', 'Odoo S.A.', 'uninstalled', '17.0.1.0', 'LGPL-3', true, '2024-01-10 09:00:00', '2024-01-10 09:00:00');

-- Partners: the company, employees' work contacts, customers.
INSERT INTO res_partner (id, company_id, create_date, name, complete_name, parent_id, commercial_partner_id, lang, tz, vat, website, function, type, street, street2, zip, city, email, phone, mobile, commercial_company_name, company_name, comment, active, employee, is_company, partner_share, write_date, email_normalized, phone_sanitized) VALUES
    (1, 1, '2024-01-10 09:00:00', 'Brackwater Pumps Ltd', 'Brackwater Pumps Ltd', NULL, 1, 'en_US', 'Europe/London', 'GB907311842', 'https://brackwater-pumps.example', NULL, 'contact', '14 Quillfeather Lane', 'Unit 7', 'BW4 9QT', 'Ashcombe Regis', 'office@brackwater-pumps.example', '+44 20 7946 0311', NULL, 'Brackwater Pumps Ltd', NULL, NULL, true, false, true, false, '2024-01-10 09:00:00', 'office@brackwater-pumps.example', '+442079460311'),
    (2, 1, '2024-01-10 09:00:00', 'Administrator', 'Administrator', NULL, 2, 'en_US', 'Europe/London', NULL, NULL, NULL, 'contact', NULL, NULL, NULL, NULL, 'admin@brackwater-pumps.example', NULL, NULL, NULL, NULL, NULL, true, false, false, false, '2024-01-10 09:00:00', 'admin@brackwater-pumps.example', NULL),
    (3, 1, '2024-01-11 10:12:00', 'Philippa Ormerod-Vance', 'Philippa Ormerod-Vance', NULL, 3, 'en_GB', 'Europe/London', NULL, NULL, 'Sales Manager', 'contact', NULL, NULL, NULL, NULL, 'philippa.ormerod@brackwater-pumps.example', '+44 20 7946 0412', '+44 7700 900412', NULL, NULL, NULL, true, true, false, false, '2024-01-11 10:12:00', 'philippa.ormerod@brackwater-pumps.example', '+442079460412'),
    (4, 1, '2024-01-11 10:15:00', 'Thaddeus Quimby', 'Thaddeus Quimby', NULL, 4, 'en_GB', 'Europe/London', NULL, NULL, 'Accountant', 'contact', NULL, NULL, NULL, NULL, 'thaddeus.quimby@brackwater-pumps.example', '+44 20 7946 0555', '+44 7700 900555', NULL, NULL, NULL, true, true, false, false, '2024-01-11 10:15:00', 'thaddeus.quimby@brackwater-pumps.example', '+442079460555'),
    (5, NULL, '2024-02-01 14:00:00', 'Vellacott Marine Engineering', 'Vellacott Marine Engineering', NULL, 5, 'en_GB', NULL, 'GB318447209', 'https://vellacott-marine.example', NULL, 'contact', '3 Harbourside Row', NULL, 'PZ19 2LX', 'Porthkerran', 'purchasing@vellacott-marine.example', '+44 1736 960128', NULL, 'Vellacott Marine Engineering', NULL, '<p>Key account since 2019.</p>', true, false, true, true, '2024-02-01 14:00:00', 'purchasing@vellacott-marine.example', '+441736960128'),
    (6, NULL, '2024-02-01 14:05:00', 'Rosalind Fairweather-Skoglund', 'Vellacott Marine Engineering, Rosalind Fairweather-Skoglund', 5, 5, 'en_GB', NULL, NULL, NULL, 'Head of Procurement', 'contact', '3 Harbourside Row', NULL, 'PZ19 2LX', 'Porthkerran', 'rosalind.fs@vellacott-marine.example', '+44 1736 960177', '+44 7700 900177', 'Vellacott Marine Engineering', NULL, '<p>Prefers calls before 10am; ask for Rosalind Fairweather-Skoglund directly.</p>', true, false, false, true, '2024-02-01 14:05:00', 'rosalind.fs@vellacott-marine.example', '+441736960177'),
    (7, NULL, '2024-03-05 08:30:00', 'Ignatius Borrowdale', 'Ignatius Borrowdale', NULL, 7, 'en_US', NULL, 'DE287651199', NULL, NULL, 'contact', 'Kesselgasse 41', 'Hinterhaus', '80337', 'Lindenfurt', 'ignatius.borrowdale@mailbox-example.test', '+49 89 55501234', '+49 151 55509876', NULL, NULL, NULL, true, false, false, true, '2024-03-05 08:30:00', 'ignatius.borrowdale@mailbox-example.test', '+498955501234'),
    (8, NULL, '2024-03-05 08:35:00', 'Ignatius Borrowdale', 'Ignatius Borrowdale, Invoice Address', 7, 7, 'en_US', NULL, NULL, NULL, NULL, 'invoice', 'Postfach 1187', NULL, '80339', 'Lindenfurt', 'ignatius.borrowdale@mailbox-example.test', '+49 89 55501234', NULL, NULL, NULL, NULL, true, false, false, true, '2024-03-05 08:35:00', 'ignatius.borrowdale@mailbox-example.test', '+498955501234'),
    (9, NULL, '2024-04-02 16:20:00', 'Marguerite Okonkwo-Lindqvist', 'Marguerite Okonkwo-Lindqvist', NULL, 9, 'fr_FR', NULL, NULL, NULL, NULL, 'contact', '27 rue des Tanneurs', NULL, '69002', 'Vaudremont', 'm.okonkwo.lindqvist@courriel-example.test', '+33 4 72 99 18 64', '+33 6 12 99 18 64', NULL, NULL, NULL, true, false, false, true, '2024-04-02 16:20:00', 'm.okonkwo.lindqvist@courriel-example.test', '+33472991864'),
    (10, NULL, '2024-05-20 11:00:00', 'Cornelius Achterberg', 'Cornelius Achterberg', NULL, 10, 'nl_NL', NULL, NULL, NULL, NULL, 'contact', 'Grachtweg 88', NULL, '1017 XK', 'Zuidermeer', 'c.achterberg@post-example.test', '+31 20 555 0188', '+31 6 5550 0188', NULL, NULL, NULL, true, false, false, true, '2024-05-20 11:00:00', 'c.achterberg@post-example.test', '+31205550188'),
    (11, NULL, '2024-06-11 09:40:00', 'Seraphina Wolstenholme', 'Seraphina Wolstenholme', NULL, 11, 'en_GB', NULL, NULL, 'https://seraphina-wolstenholme.example', NULL, 'contact', '9 Larkspur Close', NULL, 'HX7 5RD', 'Hebble Bridge', 'seraphina.wolstenholme@inbox-example.test', '+44 1422 960931', '+44 7700 900931', NULL, NULL, NULL, true, false, false, true, '2024-06-11 09:40:00', 'seraphina.wolstenholme@inbox-example.test', '+441422960931');
SELECT setval('res_partner_id_seq', 100);

INSERT INTO res_company (id, name, partner_id, currency_id, sequence, email, phone, company_registry, active, create_date, write_date) VALUES
    (1, 'Brackwater Pumps Ltd', 1, 1, 10, 'office@brackwater-pumps.example', '+44 20 7946 0311', '09731184', true, '2024-01-10 09:00:00', '2024-01-10 09:00:00');

INSERT INTO res_partner_category (id, name, color, parent_path, active, create_date, write_date) VALUES
    (1, '{"en_US": "Key account", "fr_FR": "Compte clé"}', 3, '1/', true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (2, '{"en_US": "Referred by Seraphina Wolstenholme", "fr_FR": "Recommandé par Seraphina Wolstenholme"}', 5, '2/', true, '2024-06-11 09:45:00', '2024-06-11 09:45:00');
INSERT INTO res_partner_res_partner_category_rel VALUES (1, 5), (2, 10);

INSERT INTO res_users (id, company_id, partner_id, active, create_date, login, password, signature, share, write_date, totp_secret, notification_type, odoobot_state, karma, oauth_provider_id, oauth_uid, oauth_access_token) VALUES
    (1, 1, 2, false, '2024-01-10 09:00:00', '__system__', NULL, NULL, false, '2024-01-10 09:00:00', NULL, 'email', NULL, 0, NULL, NULL, NULL),
    (2, 1, 2, true, '2024-01-10 09:00:00', 'admin', '$pbkdf2-sha512$600000$adminSALTadminSALTadmin$Y2hhbmdlLW1lLWFkbWluLWhhc2gtZm9yLXRlc3Rz', '<p>Administrator</p>', false, '2024-01-10 09:00:00', NULL, 'email', 'disabled', 0, NULL, NULL, NULL),
    (6, 1, 3, true, '2024-01-11 10:12:00', 'philippa.ormerod@brackwater-pumps.example', '$pbkdf2-sha512$600000$cGhpbGlwcGFzYWx0cGhpbA$cGhpbGlwcGEtaGFzaC1mb3ItdGVzdHMtb25seS0xMjM0', '<p>Philippa Ormerod-Vance<br/>Sales Manager, +44 7700 900412</p>', false, '2024-01-11 10:12:00', 'JBSWY3DPEHPK3PXPPHILIPPA', 'inbox', 'onboarding_emoji', 120, NULL, NULL, NULL),
    (7, 1, 4, true, '2024-01-11 10:15:00', 'thaddeus.quimby@brackwater-pumps.example', '$pbkdf2-sha512$600000$dGhhZGRldXNzYWx0dGhhZA$dGhhZGRldXMtaGFzaC1mb3ItdGVzdHMtb25seS01Njc4', '<p>-- <br/>Thaddeus Quimby</p>', false, '2024-01-11 10:15:00', NULL, 'email', 'idle', 40, 1, '104455667788990011223', 'ya29.a0AfB_oauthACCESStokenQUIMBY'),
    (8, 1, 7, true, '2024-03-05 08:30:00', 'ignatius.borrowdale@mailbox-example.test', '$pbkdf2-sha512$600000$aWduYXRpdXNzYWx0aWduYQ$aWduYXRpdXMtcG9ydGFsLWhhc2gtZm9yLXRlc3Rz', NULL, true, '2024-03-05 08:30:00', NULL, 'email', NULL, 0, NULL, NULL, NULL);
SELECT setval('res_users_id_seq', 100);

UPDATE res_partner SET user_id = 6 WHERE id IN (5, 6, 7, 9);

INSERT INTO res_users_settings (user_id, is_discuss_sidebar_category_channel_open, google_calendar_rtoken, google_calendar_token, google_calendar_token_validity, google_calendar_sync_token, google_calendar_cal_id, google_synchronization_stopped, microsoft_calendar_rtoken, microsoft_calendar_token, microsoft_calendar_token_validity, microsoft_calendar_sync_token, microsoft_synchronization_stopped, create_date, write_date) VALUES
    (2, true, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, NULL, false, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (6, true, '1//0gRefreshTOKENphilippaGoogle', 'ya29.a0AfB_googleACCESSphilippa', '2026-11-24 12:00:00', 'CPDAlvWDx4oDEPDAlvWDx4oDGAUgyPqZrQI=', 'philippa.ormerod@brackwater-pumps.example', false, 'M.C507_BAY.0.U.-refreshMicrosoftPHILIPPA', 'EwBwA8l6BAAUmicrosoftACCESSphilippa', '2026-11-24 12:00:00', 'microsoftSyncTokenPHILIPPA', false, '2024-01-11 10:12:00', '2024-01-11 10:12:00'),
    (7, false, '1//0gRefreshTOKENthaddeusGoogle', 'ya29.a0AfB_googleACCESSthaddeus', '2026-11-24 12:00:00', 'CKDAlvWDx4oDEKDAlvWDx4oDGAUgyPqZrQI=', 'primary', false, NULL, NULL, NULL, NULL, false, '2024-01-11 10:15:00', '2024-01-11 10:15:00');

INSERT INTO res_partner_bank (id, active, acc_number, sanitized_acc_number, acc_holder_name, partner_id, allow_out_payment, sequence, company_id, create_date, write_date) VALUES
    (1, true, 'GB33 BUKB 2020 1555 5555 55', 'GB33BUKB20201555555555', 'Brackwater Pumps Ltd', 1, true, 10, 1, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (2, true, 'GB94 BARC 1020 1530 0934 17', 'GB94BARC10201530093417', 'Philippa Ormerod-Vance', 3, true, 10, 1, '2024-01-11 10:12:00', '2024-01-11 10:12:00'),
    (3, true, 'GB71 NWBK 6016 1331 9268 19', 'GB71NWBK60161331926819', 'Thaddeus Quimby', 4, true, 10, 1, '2024-01-11 10:15:00', '2024-01-11 10:15:00'),
    (4, true, 'DE89 3704 0044 0532 0130 00', 'DE89370400440532013000', 'Ignatius Borrowdale', 7, false, 10, NULL, '2024-03-05 08:30:00', '2024-03-05 08:30:00');
SELECT setval('res_partner_bank_id_seq', 100);

-- Server actions: the crons' code, one webhook action of an automation.
INSERT INTO ir_act_server (id, name, usage, state, model_id, model_name, code, webhook_url, base_automation_id, create_date, write_date) VALUES
    (1, '{"en_US": "Base: Auto-vacuum internal data"}', 'ir_cron', 'code', 1, 'ir.autovacuum', 'model._run_vacuum_cleaner()', NULL, NULL, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (2, '{"en_US": "Mail: Email Queue Manager"}', 'ir_cron', 'code', 2, 'mail.mail', 'model.process_email_queue()', NULL, NULL, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (3, '{"en_US": "Mail: Fetchmail Service"}', 'ir_cron', 'code', 3, 'fetchmail.server', 'model._fetch_mails()', NULL, NULL, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (4, '{"en_US": "SMS: SMS Queue Manager"}', 'ir_cron', 'code', 4, 'sms.sms', 'model._process_queue()', NULL, NULL, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (5, '{"en_US": "Google Calendar: synchronization"}', 'ir_cron', 'code', 5, 'res.users', 'model._sync_all_google_calendar()', NULL, NULL, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (6, '{"en_US": "Notify ERP-bridge of new leads"}', 'base_automation', 'webhook', 6, 'crm.lead', NULL, 'https://erp-bridge.brackwater-pumps.example/hooks/lead', 1, '2024-07-01 09:00:00', '2024-07-01 09:00:00');
SELECT setval('ir_act_server_id_seq', 100);

INSERT INTO ir_cron (id, ir_actions_server_id, cron_name, user_id, active, interval_number, interval_type, numbercall, doall, nextcall, lastcall, priority, create_date, write_date) VALUES
    (1, 1, 'Base: Auto-vacuum internal data', 1, true, 1, 'days', -1, false, '2026-11-25 03:00:00', '2026-11-24 03:00:00', 5, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (2, 2, 'Mail: Email Queue Manager', 1, true, 1, 'hours', -1, false, '2026-11-24 06:00:00', '2026-11-24 05:00:00', 5, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (3, 3, 'Mail: Fetchmail Service', 1, true, 5, 'minutes', -1, false, '2026-11-24 05:05:00', '2026-11-24 05:00:00', 5, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (4, 4, 'SMS: SMS Queue Manager', 1, true, 1, 'days', -1, false, '2026-11-25 02:00:00', '2026-11-24 02:00:00', 5, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (5, 5, 'Google Calendar: synchronization', 1, true, 12, 'hours', -1, false, '2026-11-24 12:00:00', '2026-11-24 00:00:00', 5, '2024-01-10 09:00:00', '2024-01-10 09:00:00');
SELECT setval('ir_cron_id_seq', 100);

INSERT INTO ir_model_data (name, module, model, res_id, noupdate, create_date, write_date) VALUES
    ('main_company', 'base', 'res.company', 1, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('main_partner', 'base', 'res.partner', 1, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('partner_root', 'base', 'res.partner', 2, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('user_root', 'base', 'res.users', 1, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('user_admin', 'base', 'res.users', 2, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('autovacuum_job_ir_actions_server', 'base', 'ir.actions.server', 1, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('autovacuum_job', 'base', 'ir.cron', 1, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('ir_cron_mail_scheduler_action', 'mail', 'ir.cron', 2, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('ir_cron_mail_gateway_action', 'fetchmail', 'ir.cron', 3, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('ir_cron_sms_scheduler_action', 'sms', 'ir.cron', 4, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('ir_cron_sync_all_cals', 'google_calendar', 'ir.cron', 5, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00');

INSERT INTO ir_config_parameter (key, value, create_date, write_date) VALUES
    ('database.secret', 'b5d1c2a0-6e0f-4a7c-9b1e-2f3d4c5b6a70', '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('database.uuid', '6f2c9a4e-1b3d-11ef-9c7a-0242ac120002', '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('database.create_date', '2024-01-10 09:00:00', '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('web.base.url', 'https://erp.brackwater-pumps.example', '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('mail.catchall.domain', 'brackwater-pumps.example', '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('mail.default.from', 'notifications', '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    ('base_setup.default_user_rights', 'True', '2024-01-10 09:00:00', '2024-01-10 09:00:00');

INSERT INTO ir_mail_server (id, name, from_filter, smtp_host, smtp_port, smtp_authentication, smtp_user, smtp_pass, smtp_encryption, smtp_debug, sequence, active, create_date, write_date) VALUES
    (1, 'Office 365 relay', 'brackwater-pumps.example', 'smtp.office365.example', 587, 'login', 'notifications@brackwater-pumps.example', 'Sm7p-Pa55-Brackwater!', 'starttls', false, 10, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (2, 'Marketing bulk relay', 'news.brackwater-pumps.example', 'relay.bulkmail.example', 465, 'login', 'bw-news', 'Bulk-Relay-S3cret', 'ssl', false, 20, true, '2024-01-10 09:00:00', '2024-01-10 09:00:00');
SELECT setval('ir_mail_server_id_seq', 100);

INSERT INTO fetchmail_server (id, name, active, state, server, port, server_type, is_ssl, attach, original, date, "user", password, object_id, priority, create_date, write_date) VALUES
    (1, 'Sales inbox', true, 'done', 'imap.office365.example', 993, 'imap', true, true, false, '2026-11-24 05:00:00', 'sales@brackwater-pumps.example', 'Imap-Sales-Pa55', 7, 5, '2024-01-10 09:00:00', '2024-01-10 09:00:00'),
    (2, 'Jobs inbox', true, 'done', 'imap.office365.example', 993, 'imap', true, true, false, '2026-11-24 05:00:00', 'jobs@brackwater-pumps.example', 'Imap-Jobs-Pa55', 9, 5, '2024-01-10 09:00:00', '2024-01-10 09:00:00');

INSERT INTO mail_template (id, name, model, subject, email_from, use_default_to, email_to, partner_to, reply_to, body_html, mail_server_id, auto_delete, lang, template_category, active, create_date, write_date) VALUES
    (1, '{"en_US": "Sales: quotation follow-up"}', 'sale.order', '{"en_US": "Your quotation {{ object.name }}"}', '{{ (object.user_id.email_formatted or user.email_formatted) }}', true, NULL, NULL, NULL,
     '{"en_US": "<p>Dear {{ object.partner_id.name }},</p><p>Kind regards,<br/>Philippa Ormerod-Vance<br/>+44 7700 900412 - philippa.ormerod@brackwater-pumps.example</p>", "fr_FR": "<p>Bonjour {{ object.partner_id.name }},</p><p>Cordialement,<br/>Philippa Ormerod-Vance</p>"}',
     1, true, '{{ object.partner_id.lang }}', 'base_template', true, '2024-01-12 09:00:00', '2024-01-12 09:00:00'),
    (2, '{"en_US": "Recruitment: interview invitation"}', 'hr.applicant', '{"en_US": "Interview at Brackwater Pumps"}', 'jobs@brackwater-pumps.example', false, '{{ object.email_from }}', NULL, 'jobs@brackwater-pumps.example',
     '{"en_US": "<p>Hello {{ object.partner_name }},</p><p>We would like to meet you.</p>"}',
     2, true, NULL, 'base_template', true, '2024-01-12 09:00:00', '2024-01-12 09:00:00');

-- Chatter: messages on a partner, a lead and an applicant, emails in and out.
INSERT INTO mail_message (id, subject, date, body, model, res_id, record_name, message_type, subtype_id, is_internal, author_id, email_from, reply_to, message_id, mail_server_id, email_add_signature, parent_id, create_uid, create_date, write_uid, write_date) VALUES
    (1, 'Re: Pump seals for the Porthkerran dock', '2024-02-02 09:14:00',
     '<p>Hi Philippa,</p><p>Following our call, please quote 40 seals.<br/>Rosalind Fairweather-Skoglund<br/>Head of Procurement<br/><a href="mailto:rosalind.fs@vellacott-marine.example">rosalind.fs@vellacott-marine.example</a> / +44 1736 960177</p>',
     'res.partner', 6, 'Vellacott Marine Engineering, Rosalind Fairweather-Skoglund', 'email', 1, false, 6,
     '"Rosalind Fairweather-Skoglund" <rosalind.fs@vellacott-marine.example>', '"Rosalind Fairweather-Skoglund" <rosalind.fs@vellacott-marine.example>',
     '<CAF3k9q=rosalind.fs@vellacott-marine.example>', NULL, true, NULL, 6, '2024-02-02 09:14:00', 6, '2024-02-02 09:14:00'),
    (2, NULL, '2024-02-02 10:02:00',
     '<p>Dear Rosalind Fairweather-Skoglund,</p><p>Please find our quotation attached.</p><p>--<br/>Philippa Ormerod-Vance<br/>+44 7700 900412</p>',
     'res.partner', 6, 'Vellacott Marine Engineering, Rosalind Fairweather-Skoglund', 'comment', 1, false, 3,
     '"Philippa Ormerod-Vance" <philippa.ormerod@brackwater-pumps.example>', NULL,
     '<171.1706868120.504000000000000-openerp-message-notify@brackwater-pumps.example>', 1, true, 1, 6, '2024-02-02 10:02:00', 6, '2024-02-02 10:02:00'),
    (3, NULL, '2024-03-05 08:40:00',
     '<p>Lead created from the website form by Ignatius Borrowdale (ignatius.borrowdale@mailbox-example.test, +49 151 55509876).</p>',
     'crm.lead', 1, 'Replacement impeller for Ignatius Borrowdale', 'notification', 2, true, 2,
     '"Administrator" <admin@brackwater-pumps.example>', NULL, '<172.1709628000.lead-1@brackwater-pumps.example>', NULL, true, NULL, 2, '2024-03-05 08:40:00', 2, '2024-03-05 08:40:00'),
    (4, NULL, '2024-03-06 09:00:00', '', 'crm.lead', 1, 'Replacement impeller for Ignatius Borrowdale', 'notification', 3, true, 3,
     '"Philippa Ormerod-Vance" <philippa.ormerod@brackwater-pumps.example>', NULL, '<173.1709715600.lead-1@brackwater-pumps.example>', NULL, true, NULL, 6, '2024-03-06 09:00:00', 6, '2024-03-06 09:00:00'),
    (5, 'Application: Field Service Technician', '2024-04-02 16:20:00',
     '<p>Dear hiring team,</p><p>I attach my CV. You can reach me at m.okonkwo.lindqvist@courriel-example.test or +33 6 12 99 18 64.</p><p>Marguerite Okonkwo-Lindqvist</p>',
     'hr.applicant', 1, 'Field Service Technician - Marguerite Okonkwo-Lindqvist', 'email', 1, false, 9,
     'Marguerite Okonkwo-Lindqvist <m.okonkwo.lindqvist@courriel-example.test>', NULL, '<CAM0x7r=m.okonkwo.lindqvist@courriel-example.test>', NULL, true, NULL, 1, '2024-04-02 16:20:00', 1, '2024-04-02 16:20:00'),
    (6, NULL, '2024-05-20 11:05:00',
     '<p>SMS sent to Cornelius Achterberg: Your pump is ready for pickup.</p>',
     'res.partner', 10, 'Cornelius Achterberg', 'sms', 1, false, 3,
     '"Philippa Ormerod-Vance" <philippa.ormerod@brackwater-pumps.example>', NULL, '<174.1716202000.sms@brackwater-pumps.example>', NULL, true, NULL, 6, '2024-05-20 11:05:00', 6, '2024-05-20 11:05:00'),
    (7, NULL, '2024-06-11 09:45:00',
     '<p>Seraphina Wolstenholme recommended Cornelius Achterberg. Call him on +31 6 5550 0188.</p>',
     'res.partner', 11, 'Seraphina Wolstenholme', 'comment', 2, true, 4,
     '"Thaddeus Quimby" <thaddeus.quimby@brackwater-pumps.example>', NULL, '<175.1718099100.note@brackwater-pumps.example>', NULL, true, NULL, 7, '2024-06-11 09:45:00', 7, '2024-06-11 09:45:00');
SELECT setval('mail_message_id_seq', 100);

INSERT INTO mail_message_res_partner_rel VALUES (2, 6), (5, 3), (6, 10);

-- Tracking: the lead's contact name and email changed, the salesperson set.
INSERT INTO mail_tracking_value (mail_message_id, field_id, old_value_char, new_value_char, old_value_integer, new_value_integer, create_date, write_date) VALUES
    (4, 101, 'Ignatius Borowdale', 'Ignatius Borrowdale', NULL, NULL, '2024-03-06 09:00:00', '2024-03-06 09:00:00'),
    (4, 102, 'ignatius.b@old-mailbox-example.test', 'ignatius.borrowdale@mailbox-example.test', NULL, NULL, '2024-03-06 09:00:00', '2024-03-06 09:00:00'),
    (4, 103, '', 'Philippa Ormerod-Vance', NULL, 6, '2024-03-06 09:00:00', '2024-03-06 09:00:00');
INSERT INTO mail_tracking_value (mail_message_id, field_id, old_value_text, new_value_text, create_date, write_date) VALUES
    (4, 104, 'Call back on +49 89 55501234', 'Call back on +49 151 55509876', '2024-03-06 09:00:00', '2024-03-06 09:00:00');

INSERT INTO mail_mail (mail_message_id, body_html, "references", headers, is_notification, email_to, email_cc, state, auto_delete, scheduled_date, create_date, write_date) VALUES
    (2, '<div><p>Dear Rosalind Fairweather-Skoglund,</p><p>Please find our quotation attached.</p><p>--<br/>Philippa Ormerod-Vance<br/>+44 7700 900412</p></div>',
     '<CAF3k9q=rosalind.fs@vellacott-marine.example>', '{''Return-Path'': ''bounce+2@brackwater-pumps.example''}', false,
     '"Rosalind Fairweather-Skoglund" <rosalind.fs@vellacott-marine.example>', 'purchasing@vellacott-marine.example', 'sent', false, NULL, '2024-02-02 10:02:00', '2024-02-02 10:02:05'),
    (5, '<p>Dear Marguerite Okonkwo-Lindqvist, thank you for your application.</p>', NULL, NULL, false,
     'm.okonkwo.lindqvist@courriel-example.test', NULL, 'outgoing', true, '2026-11-24 06:00:00', '2024-04-02 16:25:00', '2024-04-02 16:25:00');
INSERT INTO mail_mail_res_partner_rel VALUES (1, 6), (2, 9);

INSERT INTO sms_sms (uuid, number, body, partner_id, mail_message_id, state, failure_type, to_delete, create_date, write_date) VALUES
    ('0c5e1f0a9b7d4e2f8a6c3b1d5e7f9a2c', '+31 6 5550 0188', 'Hello Cornelius Achterberg, your pump is ready for pickup at 14 Quillfeather Lane.', 10, 6, 'sent', NULL, false, '2024-05-20 11:05:00', '2024-05-20 11:05:00'),
    ('9f8e7d6c5b4a39281706f5e4d3c2b1a0', '+44 7700 900931', 'Seraphina, your service visit is confirmed for Monday 9am.', 11, NULL, 'outgoing', NULL, false, '2024-06-11 09:50:00', '2024-06-11 09:50:00');

INSERT INTO resource_resource (id, name, active, company_id, resource_type, user_id, time_efficiency, calendar_id, tz, create_date, write_date) VALUES
    (1, 'Philippa Ormerod-Vance', true, 1, 'user', 6, 100, 1, 'Europe/London', '2024-01-11 10:12:00', '2024-01-11 10:12:00'),
    (2, 'Thaddeus Quimby', true, 1, 'user', 7, 100, 1, 'Europe/London', '2024-01-11 10:15:00', '2024-01-11 10:15:00'),
    (3, 'Bartholomew Ysselmuiden', true, 1, 'user', NULL, 100, 1, 'Europe/London', '2024-02-15 08:00:00', '2024-02-15 08:00:00');

INSERT INTO hr_employee (id, resource_id, company_id, resource_calendar_id, color, work_contact_id, user_id, parent_id, private_country_id, country_id, children, bank_account_id, km_home_work, name, job_title, work_phone, mobile_phone, work_email, private_street, private_street2, private_city, private_zip, private_phone, private_email, lang, gender, marital, spouse_complete_name, place_of_birth, ssnid, sinid, identification_id, passport_id, permit_no, visa_no, certificate, study_field, study_school, emergency_contact, emergency_phone, employee_type, barcode, pin, private_car_plate, spouse_birthdate, birthday, visa_expire, additional_note, notes, active, create_date, write_date) VALUES
    (1, 1, 1, 1, 0, 3, 6, NULL, 1, 1, 2, 2, 12, 'Philippa Ormerod-Vance', 'Sales Manager', '+44 20 7946 0412', '+44 7700 900412', 'philippa.ormerod@brackwater-pumps.example',
     '61 Wendlebury Gardens', 'Flat 2', 'Ashcombe Regis', 'BW2 7HN', '+44 1632 960412', 'philippa.ov.home@inbox-example.test', 'en_GB', 'female', 'married', 'Crispin Ormerod-Vance', 'Kettleby Magna',
     'QQ 12 34 56 C', NULL, 'ID-PHI-7731', 'P5533771', NULL, NULL, 'master', 'Business Administration', 'University of Ashcombe', 'Crispin Ormerod-Vance', '+44 7700 900413', 'employee', '4401000000017', '4412', 'AB12 OVP', '1985-09-03', '1987-04-19', NULL, 'Allergic to penicillin.', NULL, true, '2024-01-11 10:12:00', '2024-01-11 10:12:00'),
    (2, 2, 1, 1, 0, 4, 7, 1, 1, 1, 0, 3, 25, 'Thaddeus Quimby', 'Accountant', '+44 20 7946 0555', '+44 7700 900555', 'thaddeus.quimby@brackwater-pumps.example',
     '4 Pollard Mews', NULL, 'Kettleby Magna', 'KM1 4PQ', '+44 1632 960555', 'thad.quimby@inbox-example.test', 'en_GB', 'male', 'single', NULL, 'Hebble Bridge',
     'QQ 65 43 21 A', NULL, 'ID-THA-2290', 'P7788220', NULL, NULL, 'bachelor', 'Accounting', 'Kettleby College', 'Agatha Quimby', '+44 7700 900556', 'employee', '4401000000024', '5580', NULL, NULL, '1979-12-01', NULL, NULL, NULL, true, '2024-01-11 10:15:00', '2024-01-11 10:15:00'),
    (3, 3, 1, 1, 0, NULL, NULL, 1, 2, 2, 1, NULL, 40, 'Bartholomew Ysselmuiden', 'Field Service Technician', NULL, '+44 7700 900777', NULL,
     'Dijkstraat 5', NULL, 'Zuidermeer', '1018 AB', '+31 20 555 0777', 'b.ysselmuiden@post-example.test', 'nl_NL', 'male', 'cohabitant', 'Femke de Wit-Ysselmuiden', 'Zuidermeer',
     NULL, 'SIN-998877', 'NL-BSN-123456782', 'NX7734521', 'WP-2024-5521', 'V-GB-88123', 'other', NULL, NULL, 'Femke de Wit-Ysselmuiden', '+31 6 5550 0778', 'employee', '4401000000031', NULL, 'GX-771-Z', '1990-02-14', '1991-07-30', '2027-02-14', NULL, '<p>Work permit renewal due before the visa expires.</p>', true, '2024-02-15 08:00:00', '2024-02-15 08:00:00');

INSERT INTO hr_applicant (id, name, partner_id, partner_name, email_from, email_normalized, email_cc, partner_phone, partner_phone_sanitized, partner_mobile, partner_mobile_sanitized, linkedin_profile, description, job_id, stage_id, company_id, user_id, kanban_state, active, create_date, write_date) VALUES
    (1, 'Field Service Technician - Marguerite Okonkwo-Lindqvist', 9, 'Marguerite Okonkwo-Lindqvist', 'm.okonkwo.lindqvist@courriel-example.test', 'm.okonkwo.lindqvist@courriel-example.test', NULL,
     '+33 4 72 99 18 64', '+33472991864', '+33 6 12 99 18 64', '+33612991864', 'https://www.linkedin.example/in/marguerite-okonkwo-lindqvist',
     '<p>Referred by Seraphina Wolstenholme. Eight years servicing marine pumps.</p>', 1, 2, 1, 6, 'normal', true, '2024-04-02 16:20:00', '2024-04-02 16:20:00');

INSERT INTO crm_lead (id, name, user_id, team_id, company_id, partner_id, description, active, type, priority, stage_id, email_from, email_normalized, email_cc, partner_name, contact_name, function, website, street, street2, zip, city, country_id, phone, mobile, phone_sanitized, expected_revenue, probability, create_date, write_date) VALUES
    (1, 'Replacement impeller for Ignatius Borrowdale', 6, 1, 1, 7, '<p>Ignatius Borrowdale called from +49 89 55501234 about a failed impeller.</p>', true, 'opportunity', '2', 2,
     'ignatius.borrowdale@mailbox-example.test', 'ignatius.borrowdale@mailbox-example.test', NULL, NULL, 'Ignatius Borrowdale', NULL, NULL, 'Kesselgasse 41', 'Hinterhaus', '80337', 'Lindenfurt', 3,
     '+49 89 55501234', '+49 151 55509876', '+498955501234', 4800, 40, '2024-03-05 08:40:00', '2024-03-06 09:00:00'),
    (2, 'Harbour pumps retrofit', 6, 1, 1, NULL, '<p>Contact from the trade fair.</p>', true, 'lead', '1', 1,
     'c.achterberg@post-example.test', 'c.achterberg@post-example.test', 'seraphina.wolstenholme@inbox-example.test', 'Achterberg Havenbedrijf', 'Cornelius Achterberg', 'Owner', 'https://achterberg-haven.example', 'Grachtweg 88', NULL, '1017 XK', 'Zuidermeer', 4,
     '+31 20 555 0188', '+31 6 5550 0188', '+31205550188', 12000, 10, '2024-05-20 11:00:00', '2024-05-20 11:00:00');

-- Attachments: a partner's photo, an applicant's CV, an invoice PDF of the
-- company, and an attachment kept in the database (db_datas).
INSERT INTO ir_attachment (name, description, res_model, res_field, res_id, company_id, type, url, public, access_token, db_datas, store_fname, file_size, checksum, mimetype, index_content, create_uid, create_date, write_uid, write_date) VALUES
    ('image_1920', NULL, 'res.partner', 'image_1920', 6, NULL, 'binary', NULL, false, NULL, NULL, '8a/8a3f5c2e9d1b7a6f4e3d2c1b0a9f8e7d6c5b4a39', 48213, '8a3f5c2e9d1b7a6f4e3d2c1b0a9f8e7d6c5b4a39', 'image/png', NULL, 6, '2024-02-01 14:06:00', 6, '2024-02-01 14:06:00'),
    ('CV Marguerite Okonkwo-Lindqvist.pdf', NULL, 'hr.applicant', NULL, 1, 1, 'binary', NULL, false, NULL, NULL, '3c/3c9e7a1b5d2f8e4a6c0b9d7e5f3a1c8b2d4e6f70', 182044, '3c9e7a1b5d2f8e4a6c0b9d7e5f3a1c8b2d4e6f70', 'application/pdf', 'Marguerite Okonkwo-Lindqvist Curriculum vitae m.okonkwo.lindqvist@courriel-example.test', 1, '2024-04-02 16:20:00', 1, '2024-04-02 16:20:00'),
    ('INV_2024_00042.pdf', NULL, 'account.move', NULL, 42, 1, 'binary', NULL, false, NULL, NULL, 'e1/e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e', 95120, 'e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e', 'application/pdf', 'Invoice INV/2024/00042', 7, '2024-03-10 12:00:00', 7, '2024-03-10 12:00:00'),
    ('visit-notes.txt', NULL, 'res.partner', NULL, 11, NULL, 'binary', NULL, false, NULL, convert_to('Visit notes: Seraphina Wolstenholme, 9 Larkspur Close, +44 7700 900931', 'UTF8'), NULL, 71, '5f2b1e8c0d9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c', 'text/plain', 'Visit notes: Seraphina Wolstenholme', 4, '2024-06-11 09:50:00', 4, '2024-06-11 09:50:00'),
    ('web_icon_data', NULL, 'ir.ui.menu', 'web_icon_data', 5, NULL, 'binary', NULL, false, NULL, NULL, '0b/0b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c', 2290, '0b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c', 'image/svg+xml', NULL, 1, '2024-01-10 09:00:00', 1, '2024-01-10 09:00:00');

-- Live payment providers with credentials, a live carrier, IAP accounts,
-- an enabled OAuth provider, an automation that calls a webhook.
INSERT INTO payment_provider (id, name, code, state, sequence, company_id, is_published, allow_tokenization, capture_manually, stripe_publishable_key, stripe_secret_key, stripe_webhook_secret, paypal_email_account, paypal_pdt_token, create_date, write_date) VALUES
    (1, '{"en_US": "Stripe"}', 'stripe', 'enabled', 1, 1, true, true, false, 'pk_live_51BrackwaterPUBLISHABLE', 'sk_live_51BrackwaterSECRETkey', 'whsec_BrackwaterWEBHOOKsecret', NULL, NULL, '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
    (2, '{"en_US": "PayPal"}', 'paypal', 'enabled', 2, 1, true, false, false, NULL, NULL, NULL, 'payments@brackwater-pumps.example', 'PDTtokenBrackwaterPAYPAL', '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
    (3, '{"en_US": "Wire Transfer"}', 'custom', 'enabled', 3, 1, true, false, false, NULL, NULL, NULL, NULL, NULL, '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
    (4, '{"en_US": "Demo"}', 'demo', 'test', 4, 1, false, false, false, NULL, NULL, NULL, NULL, NULL, '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
    (5, '{"en_US": "Adyen"}', 'adyen', 'disabled', 5, 1, false, false, false, NULL, NULL, NULL, NULL, NULL, '2024-01-15 09:00:00', '2024-01-15 09:00:00');

INSERT INTO delivery_carrier (id, name, active, sequence, delivery_type, integration_level, prod_environment, debug_logging, company_id, product_id, fixed_price, create_date, write_date) VALUES
    (1, '{"en_US": "Standard delivery"}', true, 1, 'fixed', 'rate', false, false, 1, 10, 12.50, '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
    (2, '{"en_US": "DHL Express"}', true, 2, 'dhl', 'rate_and_ship', true, false, 1, 11, 0, '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
    (3, '{"en_US": "FedEx International"}', true, 3, 'fedex', 'rate_and_ship', true, true, 1, 12, 0, '2024-01-15 09:00:00', '2024-01-15 09:00:00');

INSERT INTO iap_account (id, service_name, account_token, create_date, write_date) VALUES
    (1, 'sms', '7c1e0f3a-5b2d-4e6f-8a9b-0c1d2e3f4a5b', '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
    (2, 'partner_autocomplete', '2f4e6a8c-0b1d-4f3a-9c5e-7d9b1f3a5c7e', '2024-01-15 09:00:00', '2024-01-15 09:00:00');

INSERT INTO auth_oauth_provider (id, name, client_id, auth_endpoint, scope, validation_endpoint, data_endpoint, enabled, css_class, body, sequence, create_date, write_date) VALUES
    (1, 'Google OAuth2', '998877665544-brackwater.apps.googleusercontent.example', 'https://accounts.google.example/o/oauth2/auth', 'openid profile email', 'https://www.googleapis.example/oauth2/v3/tokeninfo', NULL, true, 'fa fa-fw fa-google', 'Log in with Google', 10, '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
    (2, 'Odoo.com Accounts', '', 'https://accounts.odoo.example/oauth2/auth', 'userinfo', 'https://accounts.odoo.example/oauth2/tokeninfo', NULL, false, 'fa fa-fw o_custom_icon', 'Log in with Odoo.com', 10, '2024-01-15 09:00:00', '2024-01-15 09:00:00');

INSERT INTO base_automation (id, name, model_id, active, trigger, filter_domain, webhook_uuid, log_webhook_calls, create_date, write_date) VALUES
    (1, '{"en_US": "Push new leads to ERP bridge"}', 6, true, 'on_create', '[]', NULL, false, '2024-07-01 09:00:00', '2024-07-01 09:00:00'),
    (2, '{"en_US": "Inbound webhook: shop orders"}', 6, true, 'on_webhook', NULL, 'a3f9c2d1-7b4e-4e8a-9c1d-5f6e7a8b9c0d', true, '2024-07-01 09:00:00', '2024-07-01 09:00:00');
