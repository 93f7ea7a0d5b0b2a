using System.Diagnostics;

namespace SecureMesh.IntegrationTests.NatLab;

/// <summary>How a home router maps and filters.</summary>
internal enum NatBehaviour
{
    /// <summary>
    /// The common home router: endpoint-independent mapping (nftables masquerade keeps the source port when it is free,
    /// so one inside port is one outside port whoever it talks to) with address-and-port-dependent filtering (only
    /// packets of a connection conntrack already knows come in; unsolicited ones are dropped without an answer).
    /// </summary>
    EndpointIndependent,

    /// <summary>Endpoint-dependent ("symmetric") mapping: <c>masquerade fully-random</c>, a new outside port per connection; same filtering.</summary>
    Symmetric,
}

/// <summary>
/// The NAT lab, made of network namespaces with iproute2 and nftables, nothing in the host's own namespace: an
/// "internet" namespace holding a bridge on 10.77.0.0/24, a public relay host R (10.77.0.10), and two home routers
/// (WAN 10.77.0.11 and .12) each doing NAT (<see cref="NatBehaviour"/>) for a private LAN (192.168.101.0/24,
/// 192.168.102.0/24) with one host (.2) behind it. Names start with the branch prefix and a random tag;
/// <see cref="Dispose"/> kills what runs inside and deletes them. Needs root.
/// </summary>
internal sealed class NatTopology : IDisposable
{
    public const string RelayAddress = "10.77.0.10";
    private readonly List<string> _namespaces = [];
    private readonly string _tag = "s5r-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(2));

    private NatTopology()
    {
    }

    public string Internet => _tag + "-inet";

    public string Relay => _tag + "-r";

    /// <summary>The namespace of home host <paramref name="i"/> (1 or 2).</summary>
    public string Home(int i) => $"{_tag}-h{i}";

    /// <summary>The namespace of home router <paramref name="i"/>.</summary>
    public string Router(int i) => $"{_tag}-gw{i}";

    /// <summary>The WAN (public) address of router <paramref name="i"/>.</summary>
    public static string RouterWan(int i) => $"10.77.0.{10 + i}";

    /// <summary>The private address of home host <paramref name="i"/>.</summary>
    public static string HostAddress(int i) => $"192.168.10{i}.2";

    public static NatTopology Create(NatBehaviour router1, NatBehaviour router2)
    {
        var lab = new NatTopology();
        try
        {
            lab.Build(router1, router2);
        }
        catch
        {
            lab.Dispose();
            throw;
        }
        return lab;
    }

    private void Build(NatBehaviour router1, NatBehaviour router2)
    {
        Add(Internet);
        Run("ip", "-n", Internet, "link", "add", "br0", "type", "bridge");
        Run("ip", "-n", Internet, "link", "set", "br0", "up");
        Run("ip", "-n", Internet, "link", "set", "lo", "up");
        Uplink(Relay, "r", RelayAddress);
        for (var i = 1; i <= 2; i++)
        {
            var gw = Router(i);
            var host = Home(i);
            Uplink(gw, $"gw{i}", RouterWan(i));
            Add(host);
            Run("ip", "-n", gw, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", host);
            Run("ip", "-n", gw, "addr", "add", $"192.168.10{i}.1/24", "dev", "lan");
            Run("ip", "-n", gw, "link", "set", "lan", "up");
            Run("ip", "-n", host, "addr", "add", HostAddress(i) + "/24", "dev", "eth0");
            Run("ip", "-n", host, "link", "set", "eth0", "up");
            Run("ip", "-n", host, "link", "set", "lo", "up");
            Run("ip", "-n", host, "route", "add", "default", "via", $"192.168.10{i}.1");
            Run("ip", "netns", "exec", gw, "sysctl", "-qw", "net.ipv4.ip_forward=1");
            var masquerade = (i == 1 ? router1 : router2) == NatBehaviour.Symmetric ? "masquerade fully-random" : "masquerade";
            RunWithInput($$"""
                table ip nat {
                  chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "wan" {{masquerade}}; }
                }
                table ip filter {
                  chain forward { type filter hook forward priority filter; policy drop; ct state established,related accept; iifname "lan" oifname "wan" accept; }
                  chain input { type filter hook input priority filter; policy drop; ct state established,related accept; iifname "lan" accept; iifname "lo" accept; }
                }
                """, "ip", "netns", "exec", gw, "nft", "-f", "-");
        }
    }

    /// <summary>A namespace with a "wan" veth on the internet bridge at <paramref name="address"/>/24.</summary>
    private void Uplink(string ns, string port, string address)
    {
        Add(ns);
        Run("ip", "-n", Internet, "link", "add", port, "type", "veth", "peer", "name", "wan", "netns", ns);
        Run("ip", "-n", Internet, "link", "set", port, "master", "br0");
        Run("ip", "-n", Internet, "link", "set", port, "up");
        Run("ip", "-n", ns, "addr", "add", address + "/24", "dev", "wan");
        Run("ip", "-n", ns, "link", "set", "wan", "up");
        Run("ip", "-n", ns, "link", "set", "lo", "up");
    }

    private void Add(string ns)
    {
        Run("ip", "netns", "add", ns);
        _namespaces.Add(ns);
    }

    /// <summary>Kills what still runs in the namespaces and deletes them.</summary>
    public void Dispose()
    {
        for (var i = _namespaces.Count - 1; i >= 0; i--)
        {
            foreach (var text in Output(check: false, null, "ip", "netns", "pids", _namespaces[i]).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (int.TryParse(text, out var pid))
                {
                    try
                    {
                        using var process = Process.GetProcessById(pid);
                        process.Kill(entireProcessTree: true);
                        process.WaitForExit(5000);
                    }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                    {
                    }
                }
            }
            Output(check: false, null, "ip", "netns", "del", _namespaces[i]);
        }
        _namespaces.Clear();
    }

    private static void Run(params string[] command) => Output(check: true, null, command);

    private static void RunWithInput(string input, params string[] command) => Output(check: true, input, command);

    private static string Output(bool check, string? input, params string[] command)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null };
        foreach (var a in command.Skip(1))
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + command[0]);
        if (input is not null)
        {
            process.StandardInput.Write(input);
            process.StandardInput.Close();
        }
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit(15_000);
        if (check && process.ExitCode != 0)
        {
            Assert.Fail($"NAT lab set-up: '{string.Join(' ', command)}' failed: {stderr.Result.Trim()}");
        }
        return stdout;
    }
}
