using System.Diagnostics;
using System.Net;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Addressing;

public class MultiaddrTests
{
    private const string Peer = "12D3KooWAwuGjgULaLPKfdD4dGfUQmFbdcmgaXcpSEcGutEyPYuh";

    /// <summary>
    /// Text and binary forms: the first is the multiformats spec's own example (test/multiaddr.feature); the rest were
    /// produced by js <c>@multiformats/multiaddr</c> 13.0.3 (<c>Buffer.from(multiaddr(text).bytes).toString('hex')</c>)
    /// and are checked against it live in <see cref="Binary_forms_match_js_multiaddr"/>.
    /// </summary>
    public static TheoryData<string, string> Vectors => new()
    {
        { "/ip4/192.0.2.42/tcp/443", "04c000022a0601bb" },
        { "/ip6/2001:db8::7/tcp/4747", "2920010db800000000000000000000000706128b" },
        { "/dns/nas.local/tcp/4747", "35096e61732e6c6f63616c06128b" },
        { "/dns4/localhost/tcp/80", "36096c6f63616c686f7374060050" },
        { "/dns6/example.com/tcp/65535", "370b6578616d706c652e636f6d06ffff" },
        { "/ip6/::/tcp/0", "2900000000000000000000000000000000060000" },
        { $"/ip4/127.0.0.1/tcp/4001/p2p/{Peer}", "047f000001060fa1a5032600240801122010c9ebd50d17911b0c93b4957fc83fa55d1701afa9d6263eeec18fdec6ef211c" },
        { $"/ip4/198.51.100.1/tcp/4001/p2p/{Peer}/p2p-circuit/p2p/{Peer}",
            "04c6336401060fa1a5032600240801122010c9ebd50d17911b0c93b4957fc83fa55d1701afa9d6263eeec18fdec6ef211c" +
            "a202a5032600240801122010c9ebd50d17911b0c93b4957fc83fa55d1701afa9d6263eeec18fdec6ef211c" },
    };

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Text_and_binary_forms_match_the_vectors_both_ways(string text, string hex)
    {
        var fromText = Multiaddr.Parse(text);
        Assert.Equal(hex, Convert.ToHexStringLower(fromText.Bytes));
        Assert.Equal(text, fromText.ToString());
        var fromBytes = Multiaddr.FromBytes(Convert.FromHexString(hex));
        Assert.Equal(text, fromBytes.ToString());
        Assert.Equal(fromText, fromBytes);
        Assert.Equal(fromText.GetHashCode(), fromBytes.GetHashCode());
    }

    [Fact]
    public void The_spec_example_has_two_components_with_their_values()
    {
        var ma = Multiaddr.FromBytes(Convert.FromHexString("04c000022a0601bb"));
        Assert.Collection(ma.Components,
            c => { Assert.Equal(MultiaddrProtocol.Ip4, c.Protocol); Assert.Equal("192.0.2.42", c.Text); Assert.Equal([0xc0, 0, 2, 0x2a], c.Value.ToArray()); },
            c => { Assert.Equal(MultiaddrProtocol.Tcp, c.Protocol); Assert.Equal("443", c.Text); Assert.Equal([1, 0xbb], c.Value.ToArray()); });
    }

    [Fact]
    public void Ipfs_is_read_as_p2p_and_the_peer_id_is_recovered()
    {
        var ma = Multiaddr.Parse($"/dns4/nas.local/tcp/4747/ipfs/{Peer}");
        Assert.Equal($"/dns4/nas.local/tcp/4747/p2p/{Peer}", ma.ToString());
        Assert.Equal(PeerId.Parse(Peer), ma.LastPeerId(out var other));
        Assert.False(other);
    }

    [Fact]
    public void A_p2p_of_another_key_type_is_kept_but_is_not_an_Ed25519_peer()
    {
        // A legacy RSA-style Peer ID: a sha2-256 multihash (0x12, 32 bytes), base58btc "Qm…".
        var multihash = new byte[34];
        multihash[0] = 0x12;
        multihash[1] = 32;
        var text = Base58.Encode(multihash);
        var ma = Multiaddr.Parse($"/ip4/10.0.0.1/tcp/1/p2p/{text}");
        Assert.Null(ma.LastPeerId(out var other));
        Assert.True(other);
        Assert.Equal(ma, Multiaddr.FromBytes(ma.Bytes));
    }

    [Fact]
    public void From_an_endpoint()
    {
        using var id = NodeIdentity.Generate();
        Assert.Equal("/ip4/127.0.0.1/tcp/4747", Multiaddr.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 4747)).ToString());
        Assert.Equal("/ip4/192.0.2.1/tcp/80", Multiaddr.FromEndPoint(new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.1"), 80)).ToString());
        Assert.Equal($"/ip6/::1/tcp/1/p2p/{id.PeerId}", Multiaddr.FromEndPoint(new IPEndPoint(IPAddress.IPv6Loopback, 1), id.PeerId).ToString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("ip4/1.2.3.4/tcp/1", "must start with '/'")]
    [InlineData("/", "empty component")]
    [InlineData("/ip4/1.2.3.4/tcp/1/", "empty component")]
    [InlineData("/ip4//tcp/1", "needs a value")]
    [InlineData("/ip4", "needs a value")]
    [InlineData("/udp/53", "unknown protocol 'udp'")]
    [InlineData("/ip4/1.2.3", "not a dotted-quad")]
    [InlineData("/ip4/1.2.3.256", "not a dotted-quad")]
    [InlineData("/ip4/01.2.3.4", "not a dotted-quad")]
    [InlineData("/ip4/0x7f.0.0.1", "not a dotted-quad")]
    [InlineData("/ip4/::1", "not a dotted-quad")]
    [InlineData("/ip6/1.2.3.4", "not an IPv6 address")]
    [InlineData("/ip6/fe80::1%eth0", "not an IPv6 address")]
    [InlineData("/ip6/[::1]", "not an IPv6 address")]
    [InlineData("/ip4/1.2.3.4/tcp/65536", "not a port")]
    [InlineData("/ip4/1.2.3.4/tcp/-1", "not a port")]
    [InlineData("/ip4/1.2.3.4/tcp/080", "leading zeros")]
    [InlineData("/ip4/1.2.3.4/tcp/http", "not a port")]
    [InlineData("/ip4/1.2.3.4/tcp/99999999999999999999", "not a port")]
    [InlineData("/dns/a..b/tcp/1", "empty label")]
    [InlineData("/dns/-a.b/tcp/1", "starts with '-'")]
    [InlineData("/dns/a.b./tcp/1", "ends with a dot")]
    [InlineData("/dns/bad name/tcp/1", "not a DNS name")]
    [InlineData("/dns/n\u00e4s.local/tcp/1", "not a DNS name")]
    [InlineData("/p2p/0OIl", "not a base58btc")]
    [InlineData("/p2p/bafzbeigai3eoy2ccc7ybwjfz5r3rdxqrinwi4rwytly24tdbh6yk7zslrm", "not a base58btc")]
    [InlineData("/p2p/1111", "multihash")]
    public void Hostile_or_mistyped_text_is_refused_with_the_reason(string text, string reason)
    {
        Assert.False(Multiaddr.TryParse(text, out var ma, out var error));
        Assert.Null(ma);
        Assert.Contains(reason, error, StringComparison.Ordinal);
        var e = Assert.Throws<SecureMeshException>(() => Multiaddr.Parse(text));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Equal(error, e.Message);
    }

    [Fact]
    public void Long_text_is_refused_before_it_is_split()
    {
        var tooLong = "/dns/" + new string('a', Multiaddr.MaxTextLength);
        Assert.Contains("longer than", Assert.Throws<SecureMeshException>(() => Multiaddr.Parse(tooLong)).Message, StringComparison.Ordinal);
        var label = "/dns/" + new string('a', 64) + "/tcp/1";
        Assert.Contains("longer than 63", Assert.Throws<SecureMeshException>(() => Multiaddr.Parse(label)).Message, StringComparison.Ordinal);
        var many = string.Concat(Enumerable.Repeat("/p2p-circuit", Multiaddr.MaxComponents + 1));
        Assert.Contains("more than 16 components", Assert.Throws<SecureMeshException>(() => Multiaddr.Parse(many)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Error_messages_never_echo_control_characters()
    {
        Assert.False(Multiaddr.TryParse("/dns/a\u001b[2Jb/tcp/1", out _, out var error));
        Assert.DoesNotContain('\u001b', error);
        Assert.False(Multiaddr.TryParse("/\u001b[31m/1", out _, out error));
        Assert.DoesNotContain('\u001b', error);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("04c00002", "needs 4 bytes, 3 left")]            // ip4 truncated
    [InlineData("04c000022a06", "needs 2 bytes, 0 left")]        // tcp without its port
    [InlineData("04c000022a0601", "needs 2 bytes, 1 left")]      // half a port
    [InlineData("ff", "truncated varint")]                      // a code that never ends
    [InlineData("a5", "truncated varint")]                      // first byte of 421 alone
    [InlineData("8000", "not minimally encoded")]               // 0 written in two bytes
    [InlineData("8480", "truncated varint")]
    [InlineData("848000", "not minimally encoded")]             // ip4's 4 with a padded varint
    [InlineData("ffffffffffffffffff01", "longer than 9 bytes")]
    [InlineData("11", "unknown protocol code 17")]              // udp: known to the spec, not to us
    [InlineData("00", "unknown protocol code 0")]
    [InlineData("e103", "unknown protocol code 481")]           // /http
    [InlineData("35", "truncated varint")]                      // dns without its length
    [InlineData("3500", "value of 0 bytes")]
    [InlineData("35ff01", "value of 255 bytes")]                // longer than a DNS name may be
    [InlineData("35ffffffffffffffff7f", "value of")]            // a huge announced length: refused before any allocation
    [InlineData("350561", "needs 5 bytes, 1 left")]
    [InlineData("3503612062", "not a DNS name")]                // "a b"
    [InlineData("3503611b62", "not a DNS name")]                // ESC inside a name
    [InlineData("3502c3a4", "must be ASCII")]
    [InlineData("a5038101", "value of 129 bytes")]              // p2p over the multihash cap
    [InlineData("a503021220", "multihash announces a 32-byte digest but holds 0")]
    [InlineData("a50301ff", "multihash code: truncated varint")]
    [InlineData("a5030200ff", "multihash length: truncated varint")]
    public void Hostile_bytes_are_refused_with_a_protocol_error(string hex, string reason)
    {
        var bytes = Convert.FromHexString(hex);
        Assert.False(Multiaddr.TryFromBytes(bytes, out var ma, out var error));
        Assert.Null(ma);
        Assert.Contains(reason, error, StringComparison.Ordinal);
        var e = Assert.Throws<SecureMeshException>(() => Multiaddr.FromBytes(bytes));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.DoesNotContain('\u001b', e.Message);
    }

    [Fact]
    public void Oversized_binary_forms_and_too_many_components_are_refused()
    {
        var big = new byte[Multiaddr.MaxBinaryLength + 1];
        Assert.Contains("over the 1024-byte cap", Assert.Throws<SecureMeshException>(() => Multiaddr.FromBytes(big)).Message, StringComparison.Ordinal);
        // 17 × /p2p-circuit (a2 02) fits the byte cap but not the component cap.
        var circuits = Enumerable.Range(0, Multiaddr.MaxComponents + 1).SelectMany(_ => new byte[] { 0xa2, 0x02 }).ToArray();
        Assert.Contains("more than 16 components", Assert.Throws<SecureMeshException>(() => Multiaddr.FromBytes(circuits)).Message, StringComparison.Ordinal);
        Assert.Equal(MultiaddrProtocol.P2pCircuit, Multiaddr.FromBytes(circuits.AsSpan(0, 32)).Components[15].Protocol);
    }

    [Fact]
    public void Binary_forms_match_js_multiaddr()
    {
        var interop = SecureMesh.Tests.Shared.JsInterop.Directory();
        Assert.True(Directory.Exists(Path.Combine(interop, "node_modules", "@multiformats", "multiaddr")),
            "tests/interop/node_modules/@multiformats/multiaddr is missing: run `npm ci --prefix tests/interop`");
        var texts = Vectors.Select(v => (string)v[0]).ToArray();
        // js reads every text; we compare its bytes to ours, and its reading of our bytes back to text.
        const string Script = """
            import { multiaddr } from '@multiformats/multiaddr'
            let input = ''
            process.stdin.on('data', d => input += d)
            process.stdin.on('end', () => {
              for (const line of input.split('\n').filter(l => l.length > 0)) {
                const [text, hex] = line.split(' ')
                const fromText = Buffer.from(multiaddr(text).bytes).toString('hex')
                const fromBytes = multiaddr(Uint8Array.from(Buffer.from(hex, 'hex'))).toString()
                console.log(fromText + ' ' + fromBytes)
              }
            })
            """;
        var script = Path.Combine(interop, $"multiaddr-check-{Environment.ProcessId}-{Guid.NewGuid():N}.mjs");
        File.WriteAllText(script, Script);
        try
        {
            var start = new ProcessStartInfo("node", [script])
            {
                WorkingDirectory = interop,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var node = Process.Start(start)!;
            foreach (var text in texts)
            {
                node.StandardInput.WriteLine($"{text} {Convert.ToHexStringLower(Multiaddr.Parse(text).Bytes)}");
            }
            node.StandardInput.Close();
            var output = node.StandardOutput.ReadToEnd();
            Assert.True(node.WaitForExit(30_000), "node did not finish");
            Assert.True(node.ExitCode == 0, node.StandardError.ReadToEnd());
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(texts.Length, lines.Length);
            for (var i = 0; i < texts.Length; i++)
            {
                var parts = lines[i].Split(' ');
                Assert.Equal(Convert.ToHexStringLower(Multiaddr.Parse(texts[i]).Bytes), parts[0]);
                Assert.Equal(texts[i], parts[1]);
            }
        }
        finally
        {
            File.Delete(script);
        }
    }
}
