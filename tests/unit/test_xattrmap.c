/* --xattrmap: the rule language of virtiofsd's doc/xattr-mapping.md, and names mapped both ways. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs/xattrmap.h"

static char err[256];
static char host[XATTR_NAME_MAX + 1];

static struct xattrmap *parse_ok(const char *rules)
{
	struct xattrmap *m = NULL;
	err[0] = '\0';
	int ret = xattrmap_parse(rules, &m, err, sizeof(err));
	if (ret != 0)
		print_message("rules '%s': %s\n", rules, err);
	assert_int_equal(ret, 0);
	assert_non_null(m);
	return m;
}

/* The rules are refused and the message names the rule and says why. */
static void parse_bad(const char *rules, const char *says)
{
	struct xattrmap *m = NULL;
	err[0] = '\0';
	assert_int_equal(xattrmap_parse(rules, &m, err, sizeof(err)), -EINVAL);
	assert_null(m);
	if (!strstr(err, says))
		print_message("rules '%s': message '%s' lacks '%s'\n", rules, err, says);
	assert_non_null(strstr(err, says));
}

static const char *to_host(const struct xattrmap *m, const char *name)
{
	int ret = xattrmap_to_host(m, name, host);
	if (ret < 0)
		snprintf(host, sizeof(host), "%s", ret == -EPERM ? "<EPERM>" : ret == -EOPNOTSUPP ? "<ENOTSUP>" :
		         ret == -ERANGE ? "<ERANGE>" : "<?>");
	return host;
}

static const char *to_guest(const struct xattrmap *m, const char *name)
{
	const char *g = xattrmap_to_guest(m, name);
	return g ? g : "<hidden>";
}

static void test_prefix_all_with_bad_terminator_maps_both_ways(void **state)
{
	(void)state;
	struct xattrmap *m = parse_ok(":prefix:all::user.virtiofs.::bad:all:::");
	assert_string_equal(to_host(m, "security.selinux"), "user.virtiofs.security.selinux");
	assert_string_equal(to_host(m, "user.x"), "user.virtiofs.user.x");
	assert_string_equal(to_guest(m, "user.virtiofs.security.selinux"), "security.selinux");
	assert_string_equal(to_guest(m, "security.selinux"), "<hidden>"); /* the host's own: bad */
	assert_string_equal(to_guest(m, "user.virtiofs."), "<hidden>");   /* nothing left after the prefix */
	xattrmap_free(m);
}

static void test_map_shorthand_with_a_key_expands_to_three_rules(void **state)
{
	(void)state;
	struct xattrmap *m = parse_ok("/map/trusted./user.virtiofs./");
	assert_string_equal(to_host(m, "trusted.overlay.opaque"), "user.virtiofs.trusted.overlay.opaque");
	assert_string_equal(to_host(m, "user.virtiofs.trusted.x"), "<EPERM>"); /* the guest may not name the target */
	assert_string_equal(to_host(m, "user.plain"), "user.plain");          /* ok for the rest */
	assert_string_equal(to_guest(m, "user.virtiofs.trusted.x"), "trusted.x");
	assert_string_equal(to_guest(m, "trusted.hosts.own"), "<hidden>");
	assert_string_equal(to_guest(m, "user.plain"), "user.plain");
	xattrmap_free(m);
}

static void test_map_shorthand_without_a_key_is_prefix_all_then_bad(void **state)
{
	(void)state;
	struct xattrmap *m = parse_ok("  :map::user.virtiofs.:  \n");
	assert_string_equal(to_host(m, "security.selinux"), "user.virtiofs.security.selinux");
	assert_string_equal(to_guest(m, "user.virtiofs.security.selinux"), "security.selinux");
	assert_string_equal(to_guest(m, "user.other"), "<hidden>");
	xattrmap_free(m);
}

static void test_scopes_types_and_multiline_rules_as_documented(void **state)
{
	(void)state;
	struct xattrmap *m = parse_ok("/prefix/all/trusted./user.virtiofs./\n"
	                              "            /bad/server//trusted./\n"
	                              "\t/bad/client/user.virtiofs.//\n"
	                              " /unsupported/client/system.nfs4//\n"
	                              "/ok/all///");
	assert_string_equal(to_host(m, "trusted.a"), "user.virtiofs.trusted.a");
	assert_string_equal(to_host(m, "user.virtiofs.x"), "<EPERM>");
	assert_string_equal(to_host(m, "system.nfs4_acl"), "<ENOTSUP>");
	assert_string_equal(to_host(m, "user.a"), "user.a");
	assert_string_equal(to_guest(m, "user.virtiofs.trusted.a"), "trusted.a");
	assert_string_equal(to_guest(m, "trusted.b"), "<hidden>");
	assert_string_equal(to_guest(m, "system.nfs4_acl"), "system.nfs4_acl"); /* client-only rule */
	xattrmap_free(m);

	/* Client rules match the key, server rules the prepend; a rule of the other scope is skipped. */
	m = parse_ok(":ok:server::security.::prefix:client:security.:user.g.::ok:all:::");
	assert_string_equal(to_host(m, "security.selinux"), "user.g.security.selinux");
	assert_string_equal(to_guest(m, "security.selinux"), "security.selinux");
	xattrmap_free(m);
}

static void test_any_first_character_is_the_separator(void **state)
{
	(void)state;
	struct xattrmap *m = parse_ok("qprefixqclientqsecurity.quser.s.q|ok|all|||");
	assert_string_equal(to_host(m, "security.selinux"), "user.s.security.selinux");
	assert_string_equal(to_host(m, "user.x"), "user.x");
	xattrmap_free(m);
	/* Each rule picks its own; a field may hold another rule's separator. */
	m = parse_ok(":prefix:client:a/b:c.::ok:all:::");
	assert_string_equal(to_host(m, "a/bc"), "c.a/bc");
	xattrmap_free(m);
}

static void test_names_no_rule_matches_are_refused_and_hidden(void **state)
{
	(void)state;
	struct xattrmap *m = parse_ok(":prefix:client:user.:user.g.:");
	assert_string_equal(to_host(m, "user.a"), "user.g.user.a");
	assert_string_equal(to_host(m, "trusted.a"), "<EPERM>");
	assert_string_equal(to_guest(m, "user.g.user.a"), "<hidden>"); /* no server rule at all */
	xattrmap_free(m);
}

static void test_bad_syntax_names_the_rule(void **state)
{
	(void)state;
	parse_bad("", "no rules");
	parse_bad(" \n\t ", "no rules");
	parse_bad(":ok:all:::   :bogus:all:::", "rule 2: unknown type 'bogus'");
	parse_bad(":ok:everywhere:::", "rule 1: unknown scope 'everywhere'");
	parse_bad(":ok:all::", "rule 1: incomplete");
	parse_bad(":ok:all", "rule 1: incomplete");
	parse_bad(":", "rule 1: incomplete");
	parse_bad(":map::user.v.::ok:all:::", "rule 1: a map rule must be the last");
	parse_bad(":ok:all::: :map::a.: :ok:all:::", "rule 2: a map rule must be the last");
	parse_bad(":MAP::a.:", "unknown type 'MAP'");
	parse_bad(":ok:ALL:::", "unknown scope 'ALL'");
}

static void test_hostile_lengths_are_bounded(void **state)
{
	(void)state;
	char rules[2 * XATTR_NAME_MAX + 64], name[XATTR_NAME_MAX + 2];

	/* A field longer than any name is refused at parse time. */
	memset(name, 'k', XATTR_NAME_MAX + 1);
	name[XATTR_NAME_MAX + 1] = '\0';
	snprintf(rules, sizeof(rules), ":prefix:all:%s:p.:", name);
	parse_bad(rules, "longer than 255 bytes");

	/* A prefix that would push a name past XATTR_NAME_MAX: ERANGE, never a longer name. */
	struct xattrmap *m = parse_ok(":prefix:all::user.virtiofs.::bad:all:::");
	memset(name, 'n', XATTR_NAME_MAX);
	name[XATTR_NAME_MAX] = '\0';
	assert_string_equal(to_host(m, name), "<ERANGE>");
	name[XATTR_NAME_MAX - strlen("user.virtiofs.")] = '\0';
	assert_int_equal(strlen(to_host(m, name)), XATTR_NAME_MAX);
	/* A name without its NUL within XATTR_NAME_MAX + 1 bytes is not read past them. */
	memset(name, 'x', sizeof(name));
	assert_string_equal(to_host(m, name), "<ERANGE>");
	xattrmap_free(m);

	/* Prefixes that match only in part do not match. */
	m = parse_ok(":prefix:all:security.:user.sec.::bad:all:::");
	assert_string_equal(to_host(m, "security"), "<EPERM>");
	assert_string_equal(to_host(m, "securit"), "<EPERM>");
	assert_string_equal(to_host(m, "security."), "user.sec.security.");
	assert_string_equal(to_guest(m, "user.sec"), "<hidden>");
	assert_string_equal(to_guest(m, "user.sec."), "<hidden>");
	assert_string_equal(to_guest(m, "user.sec.security.x"), "security.x");
	xattrmap_free(m);

	/* At most XATTRMAP_MAX_RULES rules. */
	size_t len = (XATTRMAP_MAX_RULES + 1) * strlen(":ok:all:::") + 1;
	char *many = malloc(len);
	assert_non_null(many);
	many[0] = '\0';
	for (int i = 0; i <= XATTRMAP_MAX_RULES; i++)
		strcat(many, ":ok:all:::");
	parse_bad(many, "more than 256 rules");
	many[strlen(many) - strlen(":ok:all:::")] = '\0';
	xattrmap_free(parse_ok(many));
	free(many);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_all_with_bad_terminator_maps_both_ways),
		cmocka_unit_test(test_map_shorthand_with_a_key_expands_to_three_rules),
		cmocka_unit_test(test_map_shorthand_without_a_key_is_prefix_all_then_bad),
		cmocka_unit_test(test_scopes_types_and_multiline_rules_as_documented),
		cmocka_unit_test(test_any_first_character_is_the_separator),
		cmocka_unit_test(test_names_no_rule_matches_are_refused_and_hidden),
		cmocka_unit_test(test_bad_syntax_names_the_rule),
		cmocka_unit_test(test_hostile_lengths_are_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
