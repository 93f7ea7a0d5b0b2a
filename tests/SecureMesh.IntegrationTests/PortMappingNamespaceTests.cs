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
    private readonly string _root = Directory.CreateTempSubdirectory("securemesh-h17n-").FullName;
    private readonly ReachNamespaces _namespaces = new();
    private string _inet = string.Empty;
    private string _router = string.Empty;
    private string _home = string.Empty;

    [RootFact("network namespaces, nftables, miniupnpd")]
    public async Task A_node_behind_miniupnpd_maps_its_port_is_reached_from_the_internet_and_unmaps_on_sigterm()
    {
        Assert.True(File.Exists(Miniupnpd), "miniupnpd is not installed (./test.sh installs miniupnpd-nftables)");
        BuildTopology();
        using var upnp = NodeProcess.StartCommand(_router, [Miniupnpd, "-f", WriteMiniupnpdConfig(), "-d", "-P", Path.Combine(_root, "miniupnpd.pid")]);
        await upnp.WaitForLineAsync("Listening for NAT-PMP/PCP traffic", TimeSpan.FromSeconds(20));

        var homeA = Path.Combine(_root, "a");
        var homeI = Path.Combine(_root, "i");
        var a = Identity(homeA);
        var i = Identity(homeI);
        Assert.Equal(0, Cli.Run("--home", homeA, "peers", "add", i, "--trust", "--name", "internet").ExitCode);
        Assert.Equal(0, Cli.Run("--home", homeI, "peers", "add", a, "--trust", "--name", "home").ExitCode);
        Assert.Equal(0, Cli.Run("--home", homeA, "config", "set", "discovery", "off").ExitCode);

        using var node = NodeProcess.Start(homeA, _home, "--verbose", "run", "--listen", "0.0.0.0:4747");
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
        using var ping = NodeProcess.Start(home, _inet, "ping", $"/ip4/11.17.0.1/tcp/4747/p2p/{peer}", "--count", "1");
        var code = await ping.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return code;
    }

    private string Nft() => ReachNamespaces.Run(_router, "nft", "list", "table", "inet", "miniupnpd");

    private void BuildTopology()
    {
        _inet = _namespaces.Add("inet");
        _router = _namespaces.Add("rtr");
        _home = _namespaces.Add("home");
        _namespaces.Link(_router, "wan0", _inet, "eth0");
        _namespaces.Link(_router, "lan0", _home, "eth0");
        ReachNamespaces.Address(_inet, "11.17.0.100/24", "eth0");
        ReachNamespaces.Address(_router, "11.17.0.1/24", "wan0");
        ReachNamespaces.Address(_router, "192.168.171.1/24", "lan0");
        ReachNamespaces.Address(_home, "192.168.171.2/24", "eth0");
        NamespaceLan.Ip(check: true, "-n", _home, "route", "add", "default", "via", "192.168.171.1");
        ReachNamespaces.Run(_router, "sysctl", "-qw", "net.ipv4.ip_forward=1");
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
        ReachNamespaces.Run(_router, "nft", "-f", rules);
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

    private static string Identity(string home)
    {
        var (code, _, err) = Cli.Run("--home", home, "init");
        Assert.True(code == 0, err);
        return Cli.Json("--home", home, "id").GetProperty("peerId").GetString()!;
    }

    public void Dispose()
    {
        _namespaces.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
