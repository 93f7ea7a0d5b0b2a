using System.Text.Json;
using SecureMesh.Core.Identity;

namespace SecureMesh.Cli.Tests;

/// <summary>The trust store from the command line: bad input is one clear line, exit 2 (malformed) or 1 (refused), and nothing changes.</summary>
public sealed class TrustCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();
    private readonly string _known;

    public TrustCommandTests()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        using var peer = NodeIdentity.Generate();
        _known = peer.PeerId.Text;
        Assert.Equal(0, _cli.Home_("peers", "add", _known, "--addr", "127.0.0.1:4747", "--name", "known").ExitCode);
        Assert.Equal(0, _cli.Home_("block", "addr", "192.0.2.0/24", "--reason", "test").ExitCode);
    }

    public void Dispose() => _cli.Dispose();

    private (string Peers, string Blocklist, int LogEntries) State()
    {
        var peers = _cli.Home_("peers", "list", "--json");
        var blocklist = _cli.Home_("blocklist", "--json");
        var log = _cli.Home_("log", "--json");
        Assert.Equal(0, peers.ExitCode);
        Assert.Equal(0, blocklist.ExitCode);
        using var doc = JsonDocument.Parse(log.Out);
        return (peers.Out, blocklist.Out, doc.RootElement.GetArrayLength());
    }

    /// <summary>Malformed arguments: usage errors, exit 2 (as README says).</summary>
    public static TheoryData<string[]> MalformedCommands() => new()
    {
        new[] { "peers", "add", "12D3KooWnotAPeerId" },
        new[] { "peers", "add", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N" },
        new[] { "peers", "trust", "not-a-peer-id" },
        new[] { "peers", "block", "" },
        new[] { "peers", "unblock", "12D3KooW" },
        new[] { "peers", "connect", "12D3KooWx" },
        new[] { "block", "addr", "10.0.0.0/33" },
        new[] { "block", "addr", "abc" },
        new[] { "block", "addr", "::/129" },
        new[] { "block", "addr", "1.2.3.4/-1" },
        new[] { "block", "peer", "nope" },
        new[] { "unblock", "peer", "nope" },
        new[] { "unblock", "content", "b3:!!" },
        new[] { "block", "content", "sha256:abc" },
        new[] { "block", "content", "b3:" },
        new[] { "peers", "add", "UNKNOWN", "--addr", "not-an-address" },
        new[] { "peers", "add", "UNKNOWN", "--addr", "127.0.0.1:0" },
        new[] { "peers", "rename", "KNOWN", "bad\u0007name" },
        new[] { "peers", "rename", "KNOWN", "evil\u202Egnp.exe" },
        new[] { "peers", "rename", "KNOWN", " " },
        new[] { "peers", "block", "KNOWN", "--reason", "zero\u200Bwidth" },
        new[] { "log", "--since", "yesterday-ish" },
        new[] { "log", "--limit", "-1" },
        new[] { "config", "set", "listen", "nowhere" },
        new[] { "config", "set", "chunk-size", "3" },
        new[] { "config", "get", "no-such-key" },
        new[] { "quarantine", "show", "abc" },
        new[] { "get", "b3:nope" },
        new[] { "transfers", "cancel", "not-a-content-id" },
    };

    /// <summary>Well-formed requests the trust store refuses: failures, exit 1.</summary>
    public static TheoryData<string[]> RefusedCommands() => new()
    {
        new[] { "unblock", "addr", "198.51.100.0/24" },
        new[] { "peers", "add", "KNOWN" },
        new[] { "block", "addr", "192.0.2.0/24" },
        new[] { "peers", "trust", "UNKNOWN" },
        new[] { "peers", "unblock", "UNKNOWN" },
        new[] { "peers", "rename", "UNKNOWN", "x" },
        new[] { "peers", "remove", "UNKNOWN" },
    };

    [Theory]
    [MemberData(nameof(MalformedCommands))]
    public void Malformed_input_is_a_usage_error_exit_2_with_one_clear_line_and_changes_nothing(string[] args) => BadInput(args, 2);

    [Theory]
    [MemberData(nameof(RefusedCommands))]
    public void A_refused_request_is_one_clear_line_exit_1_and_changes_nothing(string[] args) => BadInput(args, 1);

    private void BadInput(string[] args, int exitCode)
    {
        using var stranger = NodeIdentity.Generate();
        var resolved = args.Select(a => a == "KNOWN" ? _known : a == "UNKNOWN" ? stranger.PeerId.Text : a).ToArray();
        var before = State();
        var result = _cli.Home_(resolved);
        Assert.True(result.ExitCode == exitCode, result.ToString());
        Assert.Single(result.ErrLines);
        Assert.StartsWith("error: ", result.ErrLines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);
        Assert.Equal(before, State());
    }

    public static TheoryData<string> BadAddresses() => new()
    {
        "not-an-address",
        "nas.local",
        "nas.local:0",
        "nas.local:65536",
        "2001:db8::7:4747",
        "/ip4/127.0.0.1",
        "/ip4/127.0.0.1/tcp/99999",
        "/ip4/1.2.3.256/tcp/1",
        "/udp/1",
        "/dns/bad name/tcp/1",
        "/ip4/127.0.0.1/tcp/4747/p2p/OTHER",
    };

    /// <summary>Issue 15: a malformed address, or one whose /p2p names another peer, is a usage error (exit 2), one line, nothing stored.</summary>
    [Theory]
    [MemberData(nameof(BadAddresses))]
    public void A_malformed_address_is_a_usage_error_exit_2_and_changes_nothing(string address)
    {
        using var stranger = NodeIdentity.Generate();
        using var other = NodeIdentity.Generate();
        var before = State();
        var result = _cli.Home_("peers", "add", stranger.PeerId.Text, "--addr", address.Replace("OTHER", other.PeerId.Text, StringComparison.Ordinal));
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Single(result.ErrLines);
        Assert.StartsWith("error: invalid peer address", result.ErrLines[0], StringComparison.Ordinal);
        Assert.Equal(before, State());
        if (address.EndsWith("OTHER", StringComparison.Ordinal))
        {
            Assert.Contains($"names peer {other.PeerId.Text}, not {stranger.PeerId.Text}", result.Err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Host_names_and_multiaddrs_are_stored_as_typed_in_canonical_form()
    {
        using var peer = NodeIdentity.Generate();
        var id = peer.PeerId.Text;
        var result = _cli.Home_("peers", "add", id, "--addr", "NAS.local:4747", "--addr", "/dns4/nas.local/tcp/4747",
            "--addr", "/ip6/2001:db8::7/tcp/1", "--addr", $"/ip4/192.0.2.7/tcp/4747/p2p/{id}", "--addr", "[2001:db8::8]:2");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(_cli.Home_("peers", "list", "--json").Out);
        var entry = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == id);
        var addresses = entry.GetProperty("addresses").EnumerateArray().Select(a => a.GetString()!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["/dns4/nas.local/tcp/4747", $"/ip4/192.0.2.7/tcp/4747/p2p/{id}", "/ip6/2001:db8::7/tcp/1", "[2001:db8::8]:2", "nas.local:4747"], addresses);
    }

    [Fact]
    public void A_relayed_address_is_stored_for_that_peer_and_one_for_another_peer_is_a_usage_error()
    {
        using var peer = NodeIdentity.Generate();
        using var relay = NodeIdentity.Generate();
        var id = peer.PeerId.Text;
        var result = _cli.Home_("peers", "add", id, "--addr", $"/ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit", "--addr", "192.0.2.7:4747");
        Assert.True(result.ExitCode == 0, result.ToString());
        // The relay is unknown here: the address is kept, and the user is told it waits for the relay's trust.
        Assert.Equal($"note: /ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{id} goes through {relay.PeerId}, which is not trusted here: it is dialled once you trust {relay.PeerId}",
            Assert.Single(result.ErrLines));
        using (var doc = JsonDocument.Parse(_cli.Home_("peers", "list", "--json").Out))
        {
            var entry = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == id);
            var addresses = entry.GetProperty("addresses").EnumerateArray().Select(a => a.GetString()!).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal([$"/ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{id}", "192.0.2.7:4747"], addresses);
        }

        // Through a trusted relay: no note.
        Assert.True(_cli.Home_("peers", "add", relay.PeerId.Text, "--trust").ExitCode == 0);
        using var third = NodeIdentity.Generate();
        var quiet = _cli.Home_("peers", "add", third.PeerId.Text, "--addr", $"/p2p/{relay.PeerId}/p2p-circuit");
        Assert.True(quiet.ExitCode == 0 && quiet.ErrLines.Length == 0, quiet.ToString());

        using var other = NodeIdentity.Generate();
        var before = State();
        var refused = _cli.Home_("peers", "add", other.PeerId.Text, "--addr", $"/p2p/{relay.PeerId}/p2p-circuit/p2p/{id}");
        Assert.True(refused.ExitCode == 2, refused.ToString());
        Assert.Equal($"error: invalid peer address for {other.PeerId.Text}: it must end in /p2p/{other.PeerId.Text} and go through a third peer", Assert.Single(refused.ErrLines));
        Assert.Equal(before, State());
    }

    [Theory]
    [InlineData("nas.local:4747", "nas.local:4747")]
    [InlineData("/ip4/0.0.0.0/tcp/4747", "/ip4/0.0.0.0/tcp/4747")]
    [InlineData("/dns/localhost/tcp/0", "/dns/localhost/tcp/0")]
    [InlineData("[::]:4747", "[::]:4747")]
    public void Config_set_listen_accepts_names_and_multiaddrs(string value, string stored)
    {
        var result = _cli.Home_("config", "set", "listen", value);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(stored, _cli.Home_("config", "get", "listen").Out.Trim());
    }

    [Theory]
    [InlineData("nowhere")]
    [InlineData("/ip4/0.0.0.0")]
    [InlineData("/ip4/0.0.0.0/tcp/1/p2p/12D3KooWAwuGjgULaLPKfdD4dGfUQmFbdcmgaXcpSEcGutEyPYuh")]
    [InlineData("1.2.3.4:70000")]
    public void Config_set_listen_and_run_listen_refuse_a_malformed_address_with_exit_2(string value)
    {
        var before = _cli.Home_("config", "get", "listen").Out;
        var set = _cli.Home_("config", "set", "listen", value);
        Assert.True(set.ExitCode == 2, set.ToString());
        Assert.Single(set.ErrLines);
        Assert.Equal(before, _cli.Home_("config", "get", "listen").Out);
        var run = _cli.Home_("run", "--listen", value);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.StartsWith("error: --listen: invalid address", run.ErrLines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Peers_add_with_the_right_fingerprint_adds_and_with_a_wrong_one_or_a_typo_in_the_peer_id_refuses()
    {
        using var carol = NodeIdentity.Generate();
        var id = carol.PeerId;
        // A Peer ID with one character changed still parses when the changed character keeps the multihash valid;
        // find such a typo, so the test shows the fingerprint is what catches it.
        string? typo = null;
        for (var i = 12; i < id.Text.Length && typo is null; i++)
        {
            foreach (var c in "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
            {
                var candidate = string.Concat(id.Text.AsSpan(0, i), c.ToString(), id.Text.AsSpan(i + 1));
                if (c != id.Text[i] && PeerId.TryParse(candidate, out _))
                {
                    typo = candidate;
                    break;
                }
            }
        }
        Assert.NotNull(typo);
        var before = State();
        var wrong = _cli.Home_("peers", "add", typo!, "--fingerprint", id.Fingerprint, "--trust");
        Assert.True(wrong.ExitCode == 1, wrong.ToString());
        Assert.Single(wrong.ErrLines);
        Assert.Contains("fingerprint mismatch", wrong.Err, StringComparison.Ordinal);
        Assert.Contains(id.Fingerprint, wrong.Err, StringComparison.Ordinal);
        Assert.Equal(before, State());

        // Case and spacing aside, the right one is accepted.
        var right = _cli.Home_("peers", "add", id.Text, "--fingerprint", " " + id.Fingerprint.ToUpperInvariant() + " ", "--trust", "--name", "carol");
        Assert.True(right.ExitCode == 0, right.ToString());
        Assert.Contains($"added {id} ({id.Fingerprint}) as trusted", right.Out, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(_cli.Home_("peers", "list", "--json").Out);
        Assert.Equal("trusted", doc.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == id.Text).GetProperty("state").GetString());
    }

    [Fact]
    public void Peers_unblock_says_the_peer_is_now_pending_and_with_trust_makes_it_trusted()
    {
        Assert.Equal(0, _cli.Home_("peers", "block", _known).ExitCode);
        var unblocked = _cli.Home_("peers", "unblock", _known);
        Assert.True(unblocked.ExitCode == 0, unblocked.ToString());
        Assert.Contains("now pending, not trusted", unblocked.Out, StringComparison.Ordinal);
        Assert.Contains($"securemesh peers trust {_known}", unblocked.Out, StringComparison.Ordinal);
        Assert.Equal("pending", StateOf(_known));

        Assert.Equal(0, _cli.Home_("peers", "block", _known).ExitCode);
        var trusted = _cli.Home_("peers", "unblock", _known, "--trust", "--json");
        Assert.True(trusted.ExitCode == 0, trusted.ToString());
        Assert.Equal("trusted", JsonDocument.Parse(trusted.Out).RootElement.GetProperty("state").GetString());
        Assert.Equal("trusted", StateOf(_known));

        Assert.Equal(0, _cli.Home_("peers", "block", _known).ExitCode);
        var viaUnblockPeer = _cli.Home_("unblock", "peer", _known, "--trust");
        Assert.Contains("now trusted", viaUnblockPeer.Out, StringComparison.Ordinal);
        Assert.Equal("trusted", StateOf(_known));
    }

    private string StateOf(string peerId)
    {
        using var doc = JsonDocument.Parse(_cli.Home_("peers", "list", "--json").Out);
        return doc.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == peerId).GetProperty("state").GetString()!;
    }

    [Fact]
    public void Trust_block_unblock_rename_remove_show_in_the_list_and_the_log()
    {
        Assert.Equal(0, _cli.Home_("peers", "trust", _known).ExitCode);
        Assert.Equal(0, _cli.Home_("peers", "rename", _known, "alice").ExitCode);
        Assert.Equal(0, _cli.Home_("peers", "block", _known, "--reason", "changed my mind").ExitCode);
        using (var doc = JsonDocument.Parse(_cli.Home_("peers", "list", "--json").Out))
        {
            var peer = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("peerId").GetString() == _known);
            Assert.Equal("blocked", peer.GetProperty("state").GetString());
            Assert.Equal("alice", peer.GetProperty("name").GetString());
            Assert.Equal("127.0.0.1:4747", peer.GetProperty("addresses")[0].GetString());
        }
        Assert.Equal(0, _cli.Home_("peers", "unblock", _known).ExitCode);
        Assert.Equal(0, _cli.Home_("peers", "remove", _known).ExitCode);
        using var log = JsonDocument.Parse(_cli.Home_("log", "--json").Out);
        var events = log.RootElement.EnumerateArray().Where(e => e.GetProperty("peerId").GetString() == _known).Select(e => e.GetProperty("event").GetString()).ToList();
        Assert.Equal(["peer.added", "peer.trusted", "peer.renamed", "peer.blocked", "peer.unblocked", "peer.removed"], events);
        Assert.Equal(0, _cli.Home_("log", "--verify").ExitCode);
    }

    [Fact]
    public void An_anchor_printed_by_log_verify_later_detects_entries_cut_from_the_end_or_rewritten()
    {
        Assert.Equal(0, _cli.Home_("peers", "trust", _known).ExitCode);
        var first = _cli.Home_("log", "--verify");
        Assert.Equal(0, first.ExitCode);
        var anchor = System.Text.RegularExpressions.Regex.Match(first.Out, @"anchor \(keep it outside this machine\): (\d+:[0-9a-f]{64})").Groups[1].Value;
        Assert.NotEmpty(anchor);
        var seq = long.Parse(anchor.Split(':')[0], System.Globalization.CultureInfo.InvariantCulture);

        // More entries later: the old anchor still holds.
        Assert.Equal(0, _cli.Home_("peers", "rename", _known, "alice").ExitCode);
        var later = _cli.Home_("log", "--verify", "--anchor", anchor);
        Assert.True(later.ExitCode == 0, later.Err);
        Assert.Contains($"entry {seq} matches the anchor", later.Out, StringComparison.Ordinal);

        // Someone with write access cuts the newest entries, the anchored one included: the chain alone still looks
        // intact, the anchor does not.
        Sql($"DELETE FROM audit_log WHERE seq >= {seq}");
        Assert.Equal(0, _cli.Home_("log", "--verify").ExitCode);
        var cut = _cli.Home_("log", "--verify", "--anchor", anchor);
        Assert.Equal(1, cut.ExitCode);
        Assert.Contains("audit log cut", cut.Err, StringComparison.Ordinal);

        // A wrong hash for an entry that is there is a rewrite; a malformed anchor is bad input.
        var other = $"1:{new string('a', 64)}";
        var rewritten = _cli.Home_("log", "--verify", "--anchor", other);
        Assert.Equal(1, rewritten.ExitCode);
        Assert.Contains("audit log rewritten: entry 1", rewritten.Err, StringComparison.Ordinal);
        Assert.Equal(2, _cli.Home_("log", "--verify", "--anchor", "7:nothex").ExitCode);
        Assert.Equal(2, _cli.Home_("log", "--anchor", anchor).ExitCode);
    }

    private void Sql(string sql)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_cli.Home, "securemesh.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
