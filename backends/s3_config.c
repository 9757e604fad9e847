/* s3_config.c - where an S3 or R2 store is and which credentials open it. */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/s3_int.h"

/*
 * Precedence, highest first (what the user said beats what they left
 * lying around):
 *   endpoint:  -o endpoint=, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the
 *              profile's endpoint_url (its "s3 =" block first); r2://
 *              derives it from the account id instead of the environment.
 *   region:    -o region=, AWS_REGION, AWS_DEFAULT_REGION, the profile's
 *              region, us-east-1; r2:// uses "auto" unless -o region=.
 *   keys:      -o passwd_file=, -o profile=, the environment
 *              (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN),
 *              the profile named by AWS_PROFILE or "default".
 * Each source of keys gives the access key, secret and token together:
 * they are never mixed across sources.
 */

#define S3_INI_MAX 64

static void s3_cfg_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void s3_cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Frees a string that may hold a secret, wiping it first. */
static void s3_free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

int s3_is_source(const char *source)
{
	return source && (strncmp(source, "s3://", 5) == 0 ||
			  strncmp(source, "r2://", 5) == 0);
}

int s3_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		unsigned long cp;
		size_t n, j;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (len - i <= n)
			return 0;
		for (j = 1; j <= n; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* AWS's rules for bucket names, which R2 follows too. */
static int s3_bucket_valid(const char *b)
{
	size_t n = strlen(b), i, digits_dots = 0;

	if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) ||
	    !isalnum((unsigned char)b[n - 1]))
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-'))
			return 0;
		if (c == '.' && b[i + 1] == '.')
			return 0;
		if ((c >= '0' && c <= '9') || c == '.')
			digits_dots++;
	}
	if (digits_dots == n) /* looks like an IP address */
		return 0;
	return strncmp(b, "xn--", 4) != 0 && strncmp(b, "sthree-", 7) != 0;
}

static int s3_account_valid(const char *a, size_t n)
{
	size_t i;

	if (n != 32)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)a[i]))
			return 0;
	}
	return 1;
}

/*
 * "http(s)://host[:port][/]" (or a bare host, taken as https) into
 * "scheme://host[:port]" in *out.  Returns 0, -EINVAL or -ENOMEM.
 */
static int s3_endpoint_norm(const char *in, char **out)
{
	const char *host = in, *scheme = "https://";
	size_t n;

	if (strncmp(in, "https://", 8) == 0) {
		host = in + 8;
	} else if (strncmp(in, "http://", 7) == 0) {
		host = in + 7;
		scheme = "http://";
	} else if (strstr(in, "://")) {
		return -EINVAL;
	}
	n = strlen(host);
	if (n && host[n - 1] == '/')
		n--;
	if (!n || n > 253 + 6)
		return -EINVAL;
	if (strcspn(host, "/?#@ \t\r\n") < n)
		return -EINVAL;
	*out = malloc(strlen(scheme) + n + 1);
	if (!*out)
		return -ENOMEM;
	sprintf(*out, "%s%.*s", scheme, (int)n, host);
	return 0;
}

/* ---- ~/.aws files ---- */

/* One section of an INI file: keys as written, nested ones as "s3.key". */
struct s3_ini {
	char *keys[S3_INI_MAX];
	char *vals[S3_INI_MAX];
	size_t n;
};

static void s3_ini_free(struct s3_ini *ini)
{
	size_t i;

	for (i = 0; i < ini->n; i++) {
		free(ini->keys[i]);
		s3_free_secret(ini->vals[i]);
	}
	ini->n = 0;
}

static const char *s3_ini_get(const struct s3_ini *ini, const char *key)
{
	size_t i;

	for (i = ini->n; i-- > 0;) {
		if (strcmp(ini->keys[i], key) == 0)
			return ini->vals[i][0] ? ini->vals[i] : NULL;
	}
	return NULL;
}

static char *s3_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int s3_ini_add(struct s3_ini *ini, const char *parent, const char *key,
		      const char *val)
{
	size_t n = strlen(key) + (parent ? strlen(parent) + 1 : 0) + 1;

	if (ini->n == S3_INI_MAX)
		return 0; /* a section this long is not ours to read */
	ini->keys[ini->n] = malloc(n);
	ini->vals[ini->n] = strdup(val);
	if (!ini->keys[ini->n] || !ini->vals[ini->n]) {
		free(ini->keys[ini->n]);
		free(ini->vals[ini->n]);
		return -ENOMEM;
	}
	snprintf(ini->keys[ini->n], n, "%s%s%s", parent ? parent : "",
		 parent ? "." : "", key);
	ini->n++;
	return 0;
}

/*
 * Reads section `section` ("default", "profile work") of the INI file
 * `path` into *ini.  Returns 0, -ENOENT if the file or the section is not
 * there, or another -errno.
 */
static int s3_ini_load(const char *path, const char *section,
		       struct s3_ini *ini)
{
	char *line = NULL, parent[64] = "";
	size_t cap = 0;
	int in = 0, found = 0, rc = 0;
	FILE *f = fopen(path, "r");

	ini->n = 0;
	if (!f)
		return -errno;
	while (!rc && getline(&line, &cap, f) >= 0) {
		int indented = line[0] == ' ' || line[0] == '\t';
		char *s = s3_trim(line), *eq;

		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');

			if (close)
				*close = '\0';
			in = close && strcmp(s3_trim(s + 1), section) == 0;
			found |= in;
			parent[0] = '\0';
			continue;
		}
		eq = strchr(s, '=');
		if (!in || !eq)
			continue;
		*eq = '\0';
		if (!indented) {
			char *k = s3_trim(s), *v = s3_trim(eq + 1);

			/* "s3 =" opens a block of indented settings. */
			snprintf(parent, sizeof(parent), "%s", *v ? "" : k);
			rc = s3_ini_add(ini, NULL, k, v);
		} else if (parent[0]) {
			rc = s3_ini_add(ini, parent, s3_trim(s),
					s3_trim(eq + 1));
		}
	}
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
	if (!rc && ferror(f))
		rc = -EIO;
	fclose(f);
	if (!rc && !found)
		rc = -ENOENT;
	if (rc)
		s3_ini_free(ini);
	return rc;
}

/* $HOME/rel into buf, or "" when there is no home. */
static void s3_home_path(char *buf, size_t cap, const char *rel)
{
	const char *home = getenv("HOME");

	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());

		home = pw ? pw->pw_dir : NULL;
	}
	if (home)
		snprintf(buf, cap, "%s/%s", home, rel);
	else if (cap)
		buf[0] = '\0';
}

static void s3_aws_file(char *buf, size_t cap, const char *env, const char *rel)
{
	const char *p = getenv(env);

	if (p && *p)
		snprintf(buf, cap, "%s", p);
	else
		s3_home_path(buf, cap, rel);
}

/* The profile's settings: credentials file first, then config file. */
struct s3_profile {
	const char *name;
	int explicit_name; /* -o profile= or AWS_PROFILE */
	struct s3_ini cred, conf;
	int has_cred, has_conf;
	char cred_path[4096], conf_path[4096];
};

static int s3_profile_load(struct s3_profile *p, char *err, size_t errlen)
{
	char section[300];
	int rc;

	s3_aws_file(p->cred_path, sizeof(p->cred_path),
		    "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	s3_aws_file(p->conf_path, sizeof(p->conf_path), "AWS_CONFIG_FILE",
		    ".aws/config");
	rc = p->cred_path[0] ? s3_ini_load(p->cred_path, p->name, &p->cred)
			     : -ENOENT;
	if (rc && rc != -ENOENT && rc != -ENOTDIR) {
		s3_cfg_err(err, errlen, "cannot read %s: %s", p->cred_path,
			   strerror(-rc));
		return rc;
	}
	p->has_cred = rc == 0;
	snprintf(section, sizeof(section), "profile %s", p->name);
	rc = p->conf_path[0] ? s3_ini_load(p->conf_path, section, &p->conf)
			     : -ENOENT;
	if (rc == -ENOENT && strcmp(p->name, "default") == 0)
		rc = s3_ini_load(p->conf_path, "default", &p->conf);
	if (rc && rc != -ENOENT && rc != -ENOTDIR) {
		s3_cfg_err(err, errlen, "cannot read %s: %s", p->conf_path,
			   strerror(-rc));
		return rc;
	}
	p->has_conf = rc == 0;
	return 0;
}

static const char *s3_profile_get(const struct s3_profile *p, const char *key)
{
	const char *v = p->has_cred ? s3_ini_get(&p->cred, key) : NULL;

	return v ? v : p->has_conf ? s3_ini_get(&p->conf, key) : NULL;
}

static void s3_profile_free(struct s3_profile *p)
{
	s3_ini_free(&p->cred);
	s3_ini_free(&p->conf);
}

/* ---- credentials ---- */

static int s3_set_keys(struct s3_config *cfg, const char *ak, const char *sk,
		       const char *token)
{
	cfg->access_key = strdup(ak);
	cfg->secret_key = strdup(sk);
	cfg->session_token = token && *token ? strdup(token) : NULL;
	if (!cfg->access_key || !cfg->secret_key ||
	    (token && *token && !cfg->session_token))
		return -ENOMEM;
	return 0;
}

/*
 * s3fs's format: lines "ACCESS:SECRET" (any bucket) or
 * "BUCKET:ACCESS:SECRET"; '#' starts a comment.  The file must not be
 * readable or writable by group or others.
 */
static int s3_passwd_load(struct s3_config *cfg, const char *path, char *err,
			  size_t errlen)
{
	char *line = NULL, *any = NULL, *mine = NULL;
	size_t cap = 0;
	unsigned lineno = 0, bad = 0;
	struct stat st;
	FILE *f;
	int rc = 0;

	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		s3_cfg_err(err, errlen, "passwd_file %s: %s", path,
			   strerror(errno));
		return rc;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		s3_cfg_err(err, errlen, "passwd_file %s: not a regular file",
			   path);
		fclose(f);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		s3_cfg_err(err, errlen,
			   "passwd_file %s is open to group or others "
			   "(mode %04o): run chmod 600 on it",
			   path, (unsigned)(st.st_mode & 07777));
		fclose(f);
		return -EACCES;
	}
	while (getline(&line, &cap, f) >= 0) {
		char *s = s3_trim(line), *c1, *c2;

		lineno++;
		if (!*s || *s == '#')
			continue;
		c1 = strchr(s, ':');
		c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c1 || c1 == s || (c2 && strchr(c2 + 1, ':'))) {
			bad = bad ? bad : lineno;
			continue;
		}
		if (!c2) {
			if (!any && !(any = strdup(s)))
				rc = -ENOMEM;
		} else if (!mine && (size_t)(c1 - s) == strlen(cfg->bucket) &&
			   memcmp(s, cfg->bucket, (size_t)(c1 - s)) == 0) {
			if (!(mine = strdup(c1 + 1)))
				rc = -ENOMEM;
		}
		if (rc)
			break;
	}
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
	fclose(f);
	if (!rc) {
		char *use = mine ? mine : any, *colon;

		if (!use && bad) {
			s3_cfg_err(err, errlen,
				   "passwd_file %s: line %u is not "
				   "ACCESS:SECRET or BUCKET:ACCESS:SECRET",
				   path, bad);
		} else if (!use) {
			s3_cfg_err(err, errlen,
				   "passwd_file %s has no key for bucket %s",
				   path, cfg->bucket);
		}
		if (!use) {
			rc = -EINVAL;
		} else {
			colon = strchr(use, ':');
			*colon = '\0';
			if (!*use || !colon[1]) {
				s3_cfg_err(err, errlen,
					   "passwd_file %s: empty access key "
					   "or secret",
					   path);
				rc = -EINVAL;
			} else {
				rc = s3_set_keys(cfg, use, colon + 1, NULL);
			}
			*colon = ':'; /* so that the whole secret is wiped */
		}
	}
	s3_free_secret(any);
	s3_free_secret(mine);
	return rc;
}

static int s3_profile_keys(struct s3_config *cfg, struct s3_profile *p,
			   char *err, size_t errlen)
{
	const char *ak = s3_profile_get(p, "aws_access_key_id");
	const char *sk = s3_profile_get(p, "aws_secret_access_key");

	if (ak && sk)
		return s3_set_keys(cfg, ak, sk,
				   s3_profile_get(p, "aws_session_token"));
	if (!p->has_cred && !p->has_conf && p->explicit_name) {
		s3_cfg_err(err, errlen, "profile %s is in neither %s nor %s",
			   p->name, p->cred_path, p->conf_path);
		return -ENOENT;
	}
	if (s3_profile_get(p, "role_arn") || s3_profile_get(p, "sso_session") ||
	    s3_profile_get(p, "sso_start_url") ||
	    s3_profile_get(p, "credential_process")) {
		s3_cfg_err(err, errlen,
			   "profile %s gets its keys from a role, SSO or a "
			   "process, which lodefs does not do: export "
			   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
			   p->name);
		return -ENOTSUP;
	}
	if (p->has_cred || p->has_conf || p->explicit_name) {
		s3_cfg_err(err, errlen,
			   "profile %s has no aws_access_key_id and "
			   "aws_secret_access_key",
			   p->name);
		return -ENOKEY;
	}
	return -ENOENT;
}

static int s3_env_keys(struct s3_config *cfg, char *err, size_t errlen)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID");
	const char *sk = getenv("AWS_SECRET_ACCESS_KEY");

	if (ak && !*ak)
		ak = NULL;
	if (sk && !*sk)
		sk = NULL;
	if (!ak && !sk)
		return -ENOENT;
	if (!ak || !sk) {
		s3_cfg_err(err, errlen, "%s is set but %s is not",
			   ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			   ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -ENOKEY;
	}
	return s3_set_keys(cfg, ak, sk, getenv("AWS_SESSION_TOKEN"));
}

static int s3_resolve_keys(struct s3_config *cfg, const struct s3_user_opts *u,
			   struct s3_profile *p, const char *name, char *err,
			   size_t errlen)
{
	int rc;

	if (u && u->passwd_file)
		return s3_passwd_load(cfg, u->passwd_file, err, errlen);
	if (u && u->profile)
		return s3_profile_keys(cfg, p, err, errlen);
	rc = s3_env_keys(cfg, err, errlen);
	if (rc != -ENOENT)
		return rc;
	rc = s3_profile_keys(cfg, p, err, errlen);
	if (rc == -ENOENT) {
		s3_cfg_err(err, errlen,
			   "%s: no credentials: set AWS_ACCESS_KEY_ID and "
			   "AWS_SECRET_ACCESS_KEY, use -o passwd_file=, or "
			   "add a profile to %s",
			   name,
			   p->cred_path[0] ? p->cred_path
					   : "~/.aws/credentials");
		rc = -ENOKEY;
	}
	return rc;
}

/* ---- the source ---- */

/* "s3://B[/P]" or "r2://A/B[/P]" into bucket, prefix and the R2 account. */
static int s3_parse_source(const char *source, struct s3_config *cfg,
			   char *account, char *err, size_t errlen)
{
	const char *p = source + 5, *slash;
	size_t n;
	int r2 = strncmp(source, "r2://", 5) == 0;

	if (!s3_is_source(source)) {
		s3_cfg_err(err, errlen, "%s: not an s3:// or r2:// source",
			   source ? source : "(null)");
		return -EINVAL;
	}
	if (r2) {
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (!s3_account_valid(p, n)) {
			s3_cfg_err(err, errlen,
				   "%s: the R2 account id must be 32 hex "
				   "digits (r2://ACCOUNT_ID/BUCKET[/PREFIX])",
				   source);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			account[i] = (char)tolower((unsigned char)p[i]);
		account[n] = '\0';
		p = slash ? slash + 1 : p + n;
	}
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	cfg->bucket = strndup(p, n);
	if (!cfg->bucket)
		return -ENOMEM;
	if (!s3_bucket_valid(cfg->bucket)) {
		s3_cfg_err(err, errlen,
			   "%s: \"%s\" is not a valid bucket name (3-63 of "
			   "a-z 0-9 . -, starting and ending with a letter or "
			   "digit)",
			   source, cfg->bucket);
		return -EINVAL;
	}
	p = slash ? slash + 1 : p + n;
	n = strlen(p);
	if (n >= S3_KEY_MAX || !s3_utf8_valid(p, n)) {
		s3_cfg_err(err, errlen,
			   "%s: the prefix must be UTF-8 and shorter than %d "
			   "bytes",
			   source, S3_KEY_MAX);
		return -EINVAL;
	}
	cfg->prefix = malloc(n + 2);
	if (!cfg->prefix)
		return -ENOMEM;
	sprintf(cfg->prefix, "%s%s", p, n && p[n - 1] != '/' ? "/" : "");
	return 0;
}

static const char *s3_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int s3_resolve_where(struct s3_config *cfg, const struct s3_user_opts *u,
			    const struct s3_profile *p, const char *account,
			    const char *source, char *err, size_t errlen)
{
	const char *ep = u ? u->endpoint : NULL, *region = u ? u->region : NULL;
	char r2ep[80];
	int custom, rc;

	if (account[0]) {
		snprintf(r2ep, sizeof(r2ep),
			 "https://%s.r2.cloudflarestorage.com", account);
		ep = ep ? ep : r2ep;
		region = region ? region : "auto";
	}
	if (!ep)
		ep = s3_env("AWS_ENDPOINT_URL_S3");
	if (!ep)
		ep = s3_env("AWS_ENDPOINT_URL");
	if (!ep)
		ep = s3_profile_get(p, "s3.endpoint_url");
	if (!ep)
		ep = s3_profile_get(p, "endpoint_url");
	if (!region)
		region = s3_env("AWS_REGION");
	if (!region)
		region = s3_env("AWS_DEFAULT_REGION");
	if (!region)
		region = s3_profile_get(p, "region");
	if (!region)
		region = "us-east-1";
	if (strlen(region) > 40 ||
	    strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
		    strlen(region)) {
		s3_cfg_err(err, errlen, "%s: \"%s\" is not a region name",
			   source, region);
		return -EINVAL;
	}
	cfg->region = strdup(region);
	if (!cfg->region)
		return -ENOMEM;
	custom = ep != NULL;
	if (ep) {
		rc = s3_endpoint_norm(ep, &cfg->endpoint);
		if (rc == -EINVAL)
			s3_cfg_err(err, errlen,
				   "%s: endpoint \"%s\" is not http(s)://HOST"
				   "[:PORT]",
				   source, ep);
		if (rc)
			return rc;
	} else {
		cfg->endpoint = malloc(strlen(region) + 32);
		if (!cfg->endpoint)
			return -ENOMEM;
		sprintf(cfg->endpoint, "https://s3.%s.amazonaws.com", region);
	}
	/*
	 * Custom endpoints (MinIO, s3rver, R2) rarely have a DNS name per
	 * bucket; AWS does, except that a dotted bucket name breaks its TLS
	 * wildcard certificate.
	 */
	if (u && u->path_style >= 0)
		cfg->path_style = u->path_style;
	else
		cfg->path_style = custom || strchr(cfg->bucket, '.') != NULL;
	return 0;
}

int s3_config_resolve(const char *source, const struct s3_user_opts *u,
		      struct s3_config *cfg, char *err, size_t errlen)
{
	struct s3_profile prof = { 0 };
	char account[33] = "", name[80];
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	rc = s3_parse_source(source, cfg, account, err, errlen);
	if (rc)
		goto out_free;
	snprintf(name, sizeof(name), "s3://%s", cfg->bucket);
	prof.name = u && u->profile ? u->profile : s3_env("AWS_PROFILE");
	prof.explicit_name = prof.name != NULL;
	if (!prof.name)
		prof.name = "default";
	rc = s3_profile_load(&prof, err, errlen);
	if (rc)
		goto out_free;
	rc = s3_resolve_where(cfg, u, &prof, account, source, err, errlen);
	if (rc)
		goto out_free;
	rc = s3_resolve_keys(cfg, u, &prof, name, err, errlen);
	if (rc)
		goto out_free;
	if (u && u->timeout_s)
		cfg->timeout_ms =
			u->timeout_s > 86400 ? 86400000u : u->timeout_s * 1000u;
	s3_profile_free(&prof);
	return 0;
out_free:
	if (rc == -ENOMEM && err && errlen && !err[0])
		s3_cfg_err(err, errlen, "out of memory");
	s3_profile_free(&prof);
	s3_config_free(cfg);
	return rc;
}

void s3_config_free(struct s3_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->bucket);
	free(cfg->prefix);
	free(cfg->endpoint);
	free(cfg->region);
	free(cfg->access_key);
	free(cfg->connect_to);
	s3_free_secret(cfg->secret_key);
	s3_free_secret(cfg->session_token);
	memset(cfg, 0, sizeof(*cfg));
}

static int s3_dup(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int s3_config_copy(struct s3_config *dst, const struct s3_config *src)
{
	*dst = *src;
	dst->bucket = dst->prefix = dst->endpoint = dst->region = NULL;
	dst->access_key = dst->secret_key = dst->session_token = NULL;
	dst->connect_to = NULL;
	if (s3_dup(&dst->bucket, src->bucket) ||
	    s3_dup(&dst->prefix, src->prefix ? src->prefix : "") ||
	    s3_dup(&dst->endpoint, src->endpoint) ||
	    s3_dup(&dst->region, src->region) ||
	    s3_dup(&dst->access_key, src->access_key) ||
	    s3_dup(&dst->secret_key, src->secret_key) ||
	    s3_dup(&dst->session_token, src->session_token) ||
	    s3_dup(&dst->connect_to, src->connect_to)) {
		s3_config_free(dst);
		return -ENOMEM;
	}
	return 0;
}

int s3_config_describe(const struct s3_config *cfg, char *buf, size_t len)
{
	return snprintf(buf, len, "s3://%s/%s at %s (region %s%s)",
			cfg->bucket ? cfg->bucket : "?",
			cfg->prefix ? cfg->prefix : "",
			cfg->endpoint ? cfg->endpoint : "?",
			cfg->region ? cfg->region : "?",
			cfg->path_style ? ", path-style" : "");
}
