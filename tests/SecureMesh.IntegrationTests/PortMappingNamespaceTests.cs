using System.Globalization;
using System.Security.Cryptography;
using SecureMesh.TestSupport;

namespace SecureMesh.IntegrationTests;

/// <summary>
/// Issue 17, item 4, against a real router: a node behind a home router running Debian's miniupnpd (nftables backend,
/// PCP/NAT-PMP on) gets a TCP mapping, is reached directly from the "internet" (a node there pings it through the mapped
/// address), and on SIGTERM deletes the mapping (the router's nftables rules no longer have it; the ping then fails).
/// Namespaces: h17n-SUFFIX-inet (the internet) - h17n-SUFFIX-rtr (NAT + miniupnpd) - h17n-SUFFIX-home (the node).
/// The router's WAN side uses 11.17.0.0/24: miniupnpd 2.3.1 refuses to map on a private (10/8, 192.168/16) external
/// address ("Port forwarding is impossible"); nothing leaves the three namespaces, which are joined by veth pairs only.
/// </summary>
public sealed class PortMappingNamespaceTests : IDisposable
{
    private const string Miniupnpd = "/usr/sbin/miniupnpd";
    private readonly string _tag = "h17n" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2));
    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-h17n-").FullName;

    private string Inet => _tag[..4] + "-" + _tag[4..] + "-inet";

    private string Router => _tag[..4] + "-" + _tag[4..] + "-rtr";

    private string Home => _tag[..4] + "-" + _tag[4..] + "-home";

    [RootFact("network namespaces, nftables, miniupnpd")]
    public async Task A_node_behind_miniupnpd_maps_its_port_is_reached_from_the_internet_and_unmaps_on_sigterm()
    {
        Assert.True(File.Exists(Miniupnpd), "miniupnpd is not installed (./test.sh installs miniupnpd-nftables)");
        BuildTopology();
        using var upnp = NodeProcess.StartCommand(Router, [Miniupnpd, "-f", WriteMiniupnpdConfig(), "-d", "-P", Path.Combine(_root, "miniupnpd.pid")]);
        await upnp.WaitForLineAsync("Listening for NAT-PMP/PCP traffic", TimeSpan.FromSeconds(20));

        var homeA = Path.Combine(_root, "a");
        var homeI = Path.Combine(_root, "i");
        var a = Identity(homeA);
        var i = Identity(homeI);
        Assert.Equal(0, Cli.Run("--home", homeA, "peers", "add", i, "--trust", "--name", "internet").ExitCode);
        Assert.Equal(0, Cli.Run("--home", homeI, "peers", "add", a, "--trust", "--name", "home").ExitCode);
        Assert.Equal(0, Cli.Run("--home", homeA, "config", "set", "discovery", "off").ExitCode);

        using var node = NodeProcess.Start(homeA, Home, "--verbose", "run", "--listen", "0.0.0.0:4747");
        await node.WaitForLineAsync("control socket", TimeSpan.FromSeconds(60));
        await node.WaitForLineAsync("port mapping: 11.17.0.1:", TimeSpan.FromSeconds(30));

        var status = Cli.Json("--home", homeA, "status");
        Assert.Contains("by PCP", status.GetProperty("portMapping").GetString(), StringComparison.Ordinal);
        var mapped = status.GetProperty("reachability").EnumerateArray().Single(r => r.GetProperty("source").GetString() == "mapped");
        Assert.Equal("/ip4/11.17.0.1/tcp/4747", mapped.GetProperty("address").GetString());
        Assert.True(mapped.GetProperty("advertised").GetBoolean());
        var multiaddrs = Cli.Json("--home", homeA, "id").GetProperty("multiaddrs").EnumerateArray().Select(m => m.GetString()).ToList();
        Assert.Contains($"/ip4/11.17.0.1/tcp/4747/p2p/{a}", multiaddrs);
        Assert.Contains("dport 4747", Nft(), StringComparison.Ordinal);

        // From the internet: a libp2p ping through the router's mapped port reaches the node behind it.
        Assert.Equal(0, await PingFromInternetAsync(homeI, a));

        node.Signal(15);
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("removed from gateway 192.168.171.1", node.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("dport 4747", Nft(), StringComparison.Ordinal);
        // The mapping is gone: the same ping now fails (the router itself answers the SYN with a reset).
        Assert.NotEqual(0, await PingFromInternetAsync(homeI, a));
    }

    private async Task<int> PingFromInternetAsync(string home, string peer)
    {
        using var ping = NodeProcess.Start(home, Inet, "ping", $"/ip4/11.17.0.1/tcp/4747/p2p/{peer}", "--count", "1");
        var code = await ping.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return code;
    }

    private string Nft() => Run("ip", "netns", "exec", Router, "nft", "list", "table", "inet", "miniupnpd");

    private void BuildTopology()
    {
        foreach (var ns in new[] { Inet, Router, Home })
        {
            Ip("netns", "add", ns);
            Ip("-n", ns, "link", "set", "lo", "up");
        }
        // veth names are global until moved: the random tag keeps parallel runs apart.
        Link(_tag + "w", Router, "wan0", _tag + "i", Inet, "eth0");
        Link(_tag + "l", Router, "lan0", _tag + "h", Home, "eth0");
        Ip("-n", Inet, "addr", "add", "11.17.0.100/24", "dev", "eth0");
        Ip("-n", Router, "addr", "add", "11.17.0.1/24", "dev", "wan0");
        Ip("-n", Router, "addr", "add", "192.168.171.1/24", "dev", "lan0");
        Ip("-n", Home, "addr", "add", "192.168.171.2/24", "dev", "eth0");
        Ip("-n", Home, "route", "add", "default", "via", "192.168.171.1");
        Run("ip", "netns", "exec", Router, "sysctl", "-qw", "net.ipv4.ip_forward=1");
        // A home router: the LAN goes out masqueraded; nothing comes in but answers and what miniupnpd forwards.
        var rules = Path.Combine(_root, "router.nft");
        File.WriteAllText(rules, """
            table inet miniupnpd {
              chain forward {
                type filter hook forward priority 0; policy drop;
                ct state established,related accept
                iifname "lan0" oifname "wan0" accept
                jump miniupnpd
              }
              chain miniupnpd { }
              chain prerouting {
                type nat hook prerouting priority -100; policy accept;
                jump prerouting_miniupnpd
              }
              chain postrouting {
                type nat hook postrouting priority 100; policy accept;
                jump postrouting_miniupnpd
                oifname "wan0" masquerade
              }
              chain prerouting_miniupnpd { }
              chain postrouting_miniupnpd { }
            }
            """);
        Run("ip", "netns", "exec", Router, "nft", "-f", rules);
    }

    private string WriteMiniupnpdConfig()
    {
        // Debian's 2.3.1 names the PCP/NAT-PMP switch enable_natpmp (later versions: enable_pcp_pmp).
        var path = Path.Combine(_root, "miniupnpd.conf");
        File.WriteAllText(path, string.Join('\n',
            "ext_ifname=wan0",
            "listening_ip=lan0",
            "enable_upnp=no",
            "enable_natpmp=yes",
            "secure_mode=yes",
            "min_lifetime=120",
            "max_lifetime=86400",
            $"lease_file={Path.Combine(_root, "leases")}",
            "upnp_table_name=miniupnpd",
            "upnp_nat_table_name=miniupnpd",
            "upnp_forward_chain=miniupnpd",
            "upnp_nat_chain=prerouting_miniupnpd",
            "upnp_nat_postrouting_chain=postrouting_miniupnpd",
            "allow 1024-65535 192.168.171.0/24 1024-65535",
            "deny 0-65535 0.0.0.0/0 0-65535",
            string.Empty));
        return path;
    }

    private static void Link(string a, string nsA, string nameA, string b, string nsB, string nameB)
    {
        Ip("link", "add", a, "type", "veth", "peer", "name", b);
        Ip("link", "set", a, "netns", nsA);
        Ip("link", "set", b, "netns", nsB);
        Ip("-n", nsA, "link", "set", a, "name", nameA);
        Ip("-n", nsB, "link", "set", b, "name", nameB);
        Ip("-n", nsA, "link", "set", nameA, "up");
        Ip("-n", nsB, "link", "set", nameB, "up");
    }

    private static string Identity(string home)
    {
        var (code, _, err) = Cli.Run("--home", home, "init");
        Assert.True(code == 0, err);
        return Cli.Json("--home", home, "id").GetProperty("peerId").GetString()!;
    }

    private static void Ip(params string[] args) => NamespaceLan.Ip(check: true, args);

    private static string Run(string program, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)}: exit {process.ExitCode.ToString(CultureInfo.InvariantCulture)}: {error}");
        return output;
    }

    public void Dispose()
    {
        foreach (var ns in new[] { Home, Router, Inet })
        {
            NamespaceLan.Ip(check: false, "netns", "del", ns);
        }
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
