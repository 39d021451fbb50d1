# RubyGems' Gem::Version (Debian's `ruby`), for tests/advisory/differential.rs. stdin:
# `a<TAB>b` lines; stdout: one token a line, `-1`, `0` or `1` (Gem::Version#<=>), or
# `invalid-a` / `invalid-b` (Gem::Version.new raised ArgumentError).
def parse(s)
  Gem::Version.new(s)
rescue ArgumentError
  nil
end

lines = $stdin.binmode.read.force_encoding("UTF-8").split("\n", -1)
lines.pop
out = lines.map do |line|
  a, b = line.split("\t", 2)
  va = parse(a)
  vb = parse(b)
  if va.nil? then "invalid-a"
  elsif vb.nil? then "invalid-b"
  else (va <=> vb).to_s
  end
end
$stdout.write(out.join("\n") + "\n")
