using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Control;
using SecureMesh.Node.Discovery;
using SecureMesh.Storage;
using SecureMesh.TestSupport;

namespace SecureMesh.Node.Tests;

public sealed class ControlServerTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Status_is_camelCase_JSON_with_the_node_and_its_connections()
    {
        await using var fixture = await ControlFixture.StartAsync();
        using var friend = NodeIdentity.Generate();
        fixture.Node.Db.Trust.AddPeer(friend.PeerId, "friend", trusted: true);
        await using var connection = await Wait.DialAsync(friend, fixture.Node);
        await Wait.UntilAsync(() => fixture.Node.Node.GetSession(friend.PeerId) is not null, 3 * Second, "the session");

        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri("v1/status", UriKind.Relative)));
        var root = doc.RootElement;
        Assert.True(root.GetProperty("running").GetBoolean());
        Assert.Equal(fixture.Node.Identity.PeerId.Text, root.GetProperty("peerId").GetString());
        Assert.Equal(fixture.Node.Identity.PeerId.Fingerprint, root.GetProperty("fingerprint").GetString());
        Assert.Equal(fixture.Node.EndPoint.ToString(), root.GetProperty("listen")[0].GetString());
        Assert.Equal(0, root.GetProperty("transfers").GetArrayLength());
        var c = Assert.Single(root.GetProperty("connections").EnumerateArray());
        Assert.Equal(friend.PeerId.Text, c.GetProperty("peerId").GetString());
        Assert.Equal("friend", c.GetProperty("name").GetString());
        Assert.Equal("inbound", c.GetProperty("direction").GetString());
        Assert.Equal(Core.Channel.ShortAuthString.From(connection.HandshakeHash), c.GetProperty("sas").GetString());
        Assert.True(c.GetProperty("bytesReceived").GetInt64() > 0);
        Assert.True(c.GetProperty("bytesSent").GetInt64() > 0);
        Assert.True(c.TryGetProperty("since", out _));
    }

    [Fact]
    public async Task The_socket_is_owner_only_and_there_is_no_TCP_listener()
    {
        await using var fixture = await ControlFixture.StartAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(fixture.Server.SocketPath));
        Assert.Equal(Path.Combine(fixture.Node.Home, "control.sock"), fixture.Server.SocketPath);
        Assert.NotEmpty(fixture.Server.Addresses);
        Assert.All(fixture.Server.Addresses, a => Assert.StartsWith("http://unix:", a, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_stale_socket_file_is_replaced_and_the_socket_is_removed_on_stop()
    {
        var node = TestNode.Start();
        await using var _ = node;
        var path = Path.Combine(node.Home, ControlServer.FileName);
        await File.WriteAllTextAsync(path, "stale");
        var server = await ControlServer.StartAsync(node.Node, node.Db, new ControlServerOptions { Home = node.Home }, CancellationToken.None);
        using (var http = ControlFixture.Client(server.SocketPath))
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("v1/status", UriKind.Relative))).StatusCode);
        }
        await server.DisposeAsync();
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task The_web_host_starts_at_the_owners_first_connection_and_answers_a_burst_of_first_requests()
    {
        await using var fixture = await ControlFixture.StartAsync();
        // Listening from the start (a client could connect now), but nothing of ASP.NET Core is built yet.
        Assert.False(fixture.Server.WebHostStarted);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(fixture.Server.SocketPath));

        // Several clients at once: the one that starts the host and those queued behind it are all served.
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            using var http = ControlFixture.Client(fixture.Server.SocketPath);
            using var response = await http.GetAsync(new Uri("v1/status", UriKind.Relative));
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));
        Assert.All(answers, a =>
        {
            Assert.Equal(HttpStatusCode.OK, a.StatusCode);
            Assert.Contains(fixture.Node.Identity.PeerId.Text, a.Body, StringComparison.Ordinal);
        });
        Assert.True(fixture.Server.WebHostStarted);
        Assert.Equal(0, fixture.Server.RefusedConnections);
    }

    [Fact]
    public async Task Every_endpoint_is_compiled_by_the_request_delegate_generator()
    {
        await using var fixture = await ControlFixture.StartAsync(withTransfer: true);
        Assert.Empty(fixture.Server.Endpoints);
        using (var http = ControlFixture.Client(fixture.Server.SocketPath))
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("v1/status", UriKind.Relative))).StatusCode);
        }
        // The generated code marks each endpoint it builds; one built at run time by RequestDelegateFactory (reflection
        // and Reflection.Emit: slow at the first request, absent under Native AOT) has no such mark.
        var routes = fixture.Server.Endpoints.OfType<Microsoft.AspNetCore.Routing.RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/v1/", StringComparison.Ordinal) == true)
            .Select(e => (Name: $"{e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IHttpMethodMetadata>()?.HttpMethods.Single()} {e.RoutePattern.RawText}",
                Tool: e.Metadata.GetMetadata<System.CodeDom.Compiler.GeneratedCodeAttribute>()?.Tool))
            .ToList();
        Assert.Contains(routes, r => r.Name == "GET /v1/status");
        Assert.Contains(routes, r => r.Name == "PUT /v1/shares/audience");
        Assert.Contains(routes, r => r.Name == "DELETE /v1/quarantine/{id:long}");
        Assert.All(routes, r => Assert.True(r.Tool?.StartsWith("Microsoft.AspNetCore.Http.RequestDelegateGenerator,", StringComparison.Ordinal) == true,
            $"{r.Name} is built at run time"));
    }

    [Fact]
    public async Task Stopping_before_any_request_closes_the_socket_and_removes_its_file()
    {
        var node = TestNode.Start();
        await using var _ = node;
        var server = await ControlServer.StartAsync(node.Node, node.Db, new ControlServerOptions { Home = node.Home }, CancellationToken.None);
        Assert.True(File.Exists(server.SocketPath));
        await server.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(server.WebHostStarted);
        Assert.False(File.Exists(server.SocketPath));
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await Assert.ThrowsAsync<SocketException>(async () => await socket.ConnectAsync(new UnixDomainSocketEndPoint(server.SocketPath)));
    }

    [Fact]
    public async Task Blocking_a_peer_through_the_API_cuts_its_session_on_the_running_node()
    {
        await using var fixture = await ControlFixture.StartAsync();
        using var friend = NodeIdentity.Generate();
        fixture.Node.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        await using var connection = await Wait.DialAsync(friend, fixture.Node);
        await Wait.UntilAsync(() => fixture.Node.Node.GetSession(friend.PeerId) is not null, 3 * Second, "the session");

        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        var started = Stopwatch.StartNew();
        var response = await http.PostAsJsonAsync(new Uri($"v1/peers/{friend.PeerId}/block", UriKind.Relative), new { reason = "test" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.True(doc.RootElement.GetProperty("changed").GetBoolean());
        Assert.True(await Wait.ClosedByRemoteAsync(connection, 3 * Second), "the blocked peer's session stayed open");
        Assert.True(started.Elapsed < 2 * Second, $"took {started.Elapsed}");
        Assert.Null(fixture.Node.Node.GetSession(friend.PeerId));
        Assert.Equal(PeerState.Blocked, fixture.Node.Db.Trust.GetPeer(friend.PeerId)!.State);
    }

    [Fact]
    public async Task Peers_can_be_added_trusted_renamed_listed_and_removed_through_the_API()
    {
        await using var fixture = await ControlFixture.StartAsync();
        using var other = NodeIdentity.Generate();
        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        var add = await http.PostAsJsonAsync(new Uri("v1/peers", UriKind.Relative), new { peerId = other.PeerId.Text, addresses = new[] { "192.0.2.7:4001" }, name = "bob" });
        Assert.Equal(HttpStatusCode.OK, add.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync(new Uri($"v1/peers/{other.PeerId}/trust", UriKind.Relative), null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync(new Uri($"v1/peers/{other.PeerId}/rename", UriKind.Relative), new { name = "robert" })).StatusCode);
        var peers = await http.GetFromJsonAsync<JsonElement>(new Uri("v1/peers", UriKind.Relative));
        var p = Assert.Single(peers.EnumerateArray());
        Assert.Equal("robert", p.GetProperty("name").GetString());
        Assert.Equal("trusted", p.GetProperty("state").GetString());
        Assert.Equal("192.0.2.7:4001", p.GetProperty("addresses")[0].GetString());
        Assert.Equal(HttpStatusCode.OK, (await http.DeleteAsync(new Uri($"v1/peers/{other.PeerId}", UriKind.Relative))).StatusCode);
        Assert.Null(fixture.Node.Db.Trust.GetPeer(other.PeerId));

        var blockAddr = await http.PostAsJsonAsync(new Uri("v1/blocklist/addr", UriKind.Relative), new { value = "10.9.0.0/16", reason = "lab" });
        Assert.Equal(HttpStatusCode.OK, blockAddr.StatusCode);
        var list = await http.GetFromJsonAsync<JsonElement>(new Uri("v1/blocklist", UriKind.Relative));
        Assert.Equal("10.9.0.0/16", list.GetProperty("addresses")[0].GetProperty("cidr").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync(new Uri("v1/blocklist/addr?cidr=10.9.0.0%2F16", UriKind.Relative))).StatusCode);
        var log = await http.GetFromJsonAsync<JsonElement>(new Uri("v1/log?limit=2", UriKind.Relative));
        Assert.Equal(2, log.GetArrayLength());
        Assert.Equal("addr.unblocked", log[1].GetProperty("event").GetString());
        var verify = await http.GetFromJsonAsync<JsonElement>(new Uri("v1/log/verify", UriKind.Relative));
        Assert.True(verify.GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task Config_set_applies_discovery_at_once_and_says_listen_needs_a_restart()
    {
        await using var fixture = await ControlFixture.StartAsync(withDiscovery: true);
        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        Assert.NotEqual("off", fixture.Discovery!.State);

        var off = await http.PutAsJsonAsync(new Uri("v1/config/discovery", UriKind.Relative), new { value = "no" });
        Assert.Equal(HttpStatusCode.OK, off.StatusCode);
        var body = await off.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("off", body.GetProperty("value").GetString());
        Assert.Equal("now", body.GetProperty("applied").GetString());
        Assert.Equal("off", fixture.Discovery.State);
        var status = await http.GetFromJsonAsync<JsonElement>(new Uri("v1/status", UriKind.Relative));
        Assert.Equal("off", status.GetProperty("discovery").GetString());
        Assert.Equal("off", fixture.Node.Db.Config.Get("discovery"));

        var listen = await http.PutAsJsonAsync(new Uri("v1/config/listen", UriKind.Relative), new { value = "127.0.0.1:5555" });
        var listenBody = await listen.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("restart", listenBody.GetProperty("applied").GetString());
        Assert.Contains("restart", listenBody.GetProperty("note").GetString(), StringComparison.Ordinal);

        var get = await http.GetFromJsonAsync<JsonElement>(new Uri("v1/config/listen", UriKind.Relative));
        Assert.Equal("127.0.0.1:5555", get.GetProperty("value").GetString());
        var all = await http.GetFromJsonAsync<JsonElement>(new Uri("v1/config", UriKind.Relative));
        Assert.Contains(all.EnumerateArray(), s => s.GetProperty("key").GetString() == "discovery" && !s.GetProperty("isDefault").GetBoolean());
    }

    [Theory]
    [InlineData("POST", "v1/peers/12D3KooWnotapeer/trust", null, 400, "invalidInput")]
    [InlineData("POST", "v1/peers/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo/trust", null, 404, "notFound")]
    [InlineData("PUT", "v1/config/no-such-key", "{\"value\":\"1\"}", 400, "invalidInput")]
    [InlineData("PUT", "v1/config/max-connections", "{\"value\":\"lots\"}", 400, "invalidInput")]
    [InlineData("POST", "v1/blocklist/addr", "{\"value\":\"not-a-cidr\"}", 400, "invalidInput")]
    [InlineData("POST", "v1/blocklist/content", "{not json", 400, "invalidInput")]
    [InlineData("GET", "v1/nothing-here", null, 404, "notFound")]
    [InlineData("GET", "v1/log?limit=-1", null, 400, "invalidInput")]
    public async Task Errors_are_JSON_with_a_status_mapped_from_the_error_kind(string method, string path, string? body, int status, string kind)
    {
        await using var fixture = await ControlFixture.StartAsync();
        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(path, UriKind.Relative));
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == (int)response.StatusCode, $"{(int)response.StatusCode}: {text}");
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(kind, doc.RootElement.GetProperty("kind").GetString());
        Assert.False(string.IsNullOrWhiteSpace(doc.RootElement.GetProperty("error").GetString()));
    }

    [Fact]
    public async Task Adding_a_known_peer_twice_is_a_409_conflict_and_connecting_an_untrusted_one_a_403()
    {
        await using var fixture = await ControlFixture.StartAsync();
        using var other = NodeIdentity.Generate();
        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync(new Uri("v1/peers", UriKind.Relative), new { peerId = other.PeerId.Text })).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await http.PostAsJsonAsync(new Uri("v1/peers", UriKind.Relative), new { peerId = other.PeerId.Text })).StatusCode);
        var connect = await http.PostAsync(new Uri($"v1/peers/{other.PeerId}/connect", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.Forbidden, connect.StatusCode);
    }

    [Fact]
    public async Task Connect_dials_a_trusted_peer_at_its_stored_address()
    {
        await using var fixture = await ControlFixture.StartAsync();
        await using var friend = TestNode.Start();
        fixture.Node.Db.Trust.AddPeer(friend.Identity.PeerId, "friend", [friend.EndPoint.ToString()], trusted: true);
        friend.Db.Trust.AddPeer(fixture.Node.Identity.PeerId, trusted: true);
        using var http = ControlFixture.Client(fixture.Server.SocketPath);
        var response = await http.PostAsync(new Uri($"v1/peers/{friend.Identity.PeerId}/connect", UriKind.Relative), null);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal("outbound", doc.RootElement.GetProperty("direction").GetString());
        Assert.NotNull(fixture.Node.Node.GetSession(friend.Identity.PeerId));
    }

    [RootFact("connects to the socket as another uid with setpriv")]
    public async Task Another_user_is_refused_by_SO_PEERCRED_even_when_the_socket_mode_lets_them_in()
    {
        Assert.True(OperatingSystem.IsLinux(), "SO_PEERCRED is Linux-only");
        Assert.True(File.Exists("/usr/bin/setpriv") && File.Exists("/usr/bin/curl"), "needs /usr/bin/setpriv and /usr/bin/curl (CI installs curl)");
        await using var fixture = await ControlFixture.StartAsync();
        // Open the door as wide as the file system allows, so only the uid check stands in the way.
        File.SetUnixFileMode(fixture.Node.Home, (UnixFileMode)0b111_001_001);
        File.SetUnixFileMode(fixture.Server.SocketPath, (UnixFileMode)0b110_110_110);

        var stranger = await RunAsync("/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "/usr/bin/curl", "-sS", "--max-time", "5", "--unix-socket", fixture.Server.SocketPath, "http://x/v1/status");
        Assert.NotEqual(0, stranger.ExitCode);
        Assert.DoesNotContain("peerId", stranger.Output, StringComparison.Ordinal);
        Assert.True(fixture.Server.RefusedConnections >= 1, "the refusal was not counted");

        var owner = await RunAsync("/usr/bin/curl", "-sS", "--max-time", "5", "--unix-socket", fixture.Server.SocketPath, "http://x/v1/status");
        Assert.True(owner.ExitCode == 0, owner.Output);
        Assert.Contains(fixture.Node.Identity.PeerId.Text, owner.Output, StringComparison.Ordinal);
    }

    [RootFact("connects to the socket as another uid with setpriv")]
    public async Task Another_users_connection_is_refused_before_the_web_host_is_started_for_it()
    {
        Assert.True(File.Exists("/usr/bin/setpriv") && File.Exists("/usr/bin/curl"), "needs /usr/bin/setpriv and /usr/bin/curl (CI installs curl)");
        await using var fixture = await ControlFixture.StartAsync();
        File.SetUnixFileMode(fixture.Node.Home, (UnixFileMode)0b111_001_001);
        File.SetUnixFileMode(fixture.Server.SocketPath, (UnixFileMode)0b110_110_110);

        for (var i = 0; i < 3; i++)
        {
            var stranger = await RunAsync("/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "/usr/bin/curl", "-sS", "--max-time", "5", "--unix-socket", fixture.Server.SocketPath, "http://x/v1/status");
            Assert.NotEqual(0, stranger.ExitCode);
            Assert.DoesNotContain("peerId", stranger.Output, StringComparison.Ordinal);
        }
        // Another user can neither reach the API nor make the node load and start the web host.
        Assert.Equal(3, fixture.Server.RefusedConnections);
        Assert.False(fixture.Server.WebHostStarted);

        var owner = await RunAsync("/usr/bin/curl", "-sS", "--max-time", "5", "--unix-socket", fixture.Server.SocketPath, "http://x/v1/status");
        Assert.True(owner.ExitCode == 0, owner.Output);
        Assert.Contains(fixture.Node.Identity.PeerId.Text, owner.Output, StringComparison.Ordinal);
        Assert.True(fixture.Server.WebHostStarted);
        Assert.Equal(3, fixture.Server.RefusedConnections);
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}

/// <summary>A test node with its control server (and optionally discovery).</summary>
internal sealed class ControlFixture : IAsyncDisposable
{
    private ControlFixture(TestNode node, ControlServer server, DiscoveryService? discovery, SecureMesh.Node.Transfer.TransferService? transfer)
    {
        Node = node;
        Server = server;
        Discovery = discovery;
        Transfer = transfer;
    }

    public TestNode Node { get; }

    public ControlServer Server { get; }

    public DiscoveryService? Discovery { get; }

    public SecureMesh.Node.Transfer.TransferService? Transfer { get; }

    public static async Task<ControlFixture> StartAsync(bool withDiscovery = false, IReadOnlyList<Action<Microsoft.AspNetCore.Routing.IEndpointRouteBuilder>>? endpointGroups = null,
        bool withTransfer = false)
    {
        var node = TestNode.Start();
        var transfer = withTransfer ? new SecureMesh.Node.Transfer.TransferService(node.Db, node.Identity, node.Home) : null;
        DiscoveryService? discovery = null;
        var registry = new DiscoveredPeers();
        if (withDiscovery)
        {
            // A private group and port, so parallel tests do not hear each other.
            discovery = new DiscoveryService(node.Identity, node.Node, node.Db, registry, new DiscoveryOptions
            {
                Group = new IPEndPoint(IPAddress.Parse("239.192.47.99"), 47000 + Random.Shared.Next(1000)),
            });
            await discovery.SetEnabledAsync(true, CancellationToken.None);
        }
        var server = await ControlServer.StartAsync(node.Node, node.Db, new ControlServerOptions
        {
            Home = node.Home,
            Discovery = discovery,
            Discovered = registry,
            EndpointGroups = endpointGroups ?? [],
            Transfer = transfer,
        }, CancellationToken.None);
        return new ControlFixture(node, server, discovery, transfer);
    }

    public static HttpClient Client(string socketPath) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    })
    {
        BaseAddress = new Uri("http://securemesh/"),
        Timeout = TimeSpan.FromSeconds(10),
    };

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        if (Discovery is not null)
        {
            await Discovery.DisposeAsync();
        }
        if (Transfer is not null)
        {
            await Transfer.DisposeAsync();
        }
        await Node.DisposeAsync();
    }
}
