<?php
// Composer's order (Debian's php-composer-semver: VersionParser::normalize, then PHP's
// version_compare on the normalised forms) and raw version_compare, for
// tests/advisory/differential.rs. stdin: `a<TAB>b` lines; stdout: two tokens a line: Composer's
// (`-1`, `0`, `1`, or `invalid-a` / `invalid-b` when normalize throws or names a branch) and
// version_compare($a, $b) on the raw strings.
require '/usr/share/php/Composer/Semver/autoload.php';

$parser = new Composer\Semver\VersionParser();
function normalized($parser, $v)
{
    try {
        $n = $parser->normalize($v);
    } catch (UnexpectedValueException $e) {
        return null;
    }
    return strncmp($n, 'dev-', 4) === 0 ? null : $n;
}

$lines = explode("\n", stream_get_contents(STDIN));
array_pop($lines);
$out = '';
foreach ($lines as $line) {
    [$a, $b] = explode("\t", $line, 2);
    $na = normalized($parser, $a);
    $nb = normalized($parser, $b);
    $composer = $na === null ? 'invalid-a' : ($nb === null ? 'invalid-b' : version_compare($na, $nb));
    $out .= $composer . ' ' . version_compare($a, $b) . "\n";
}
echo $out;
