using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using SecureMesh.Core;
using SecureMesh.Node.Control;

namespace SecureMesh.Cli;

/// <summary>
/// The control API over <c>&lt;home&gt;/control.sock</c>: the same <see cref="INodeControl"/> the CLI uses on the database
/// when no node runs. A dead socket or a node that does not answer in time is one clear error.
/// </summary>
internal sealed class ControlClient : INodeControl, ITransferControl, IGroupControl, IDisposable
{
    private readonly HttpClient _http;
    private readonly string _home;
    private readonly TimeSpan _timeout;

    public ControlClient(string home, TimeSpan? timeout = null)
    {
        _home = home;
        // A node that is not running refuses the socket at once; this deadline is only for a running node that is slow.
        // Its first request builds the control API's web host (src/SecureMesh.Node/Control: started at the owner's first
        // connection): about 0.25 s of the node's CPU since session 9 (0.46 s before), but seconds of wall time on a
        // machine loaded far beyond its cores (4.7 s at a load of 17 in session 7, over 10 s in a loaded test run).
        _timeout = timeout ?? TimeSpan.FromSeconds(30);
        var socketPath = NodeControl.SocketPathFor(home);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(10),
            UseProxy = false,
            ConnectCallback = (_, cancellationToken) => ConnectAsync(socketPath, cancellationToken),
        };
        // Per-call deadlines instead (dialling a peer may take longer than a status call).
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://securemesh/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>
    /// Connects to the socket. A listener whose accept queue is momentarily full (seen right after the node starts)
    /// makes a non-blocking connect fail with EAGAIN, which .NET reports as AddressNotAvailable: retry briefly.
    /// </summary>
    private static async ValueTask<Stream> ConnectAsync(string socketPath, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e) when (attempt < 20 && e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.WouldBlock or SocketError.TryAgain)
            {
                socket.Dispose();
                await Task.Delay(50, cancellationToken);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    public Task<NodeStatus> GetStatusAsync(CancellationToken cancellationToken) => GetAsync<NodeStatus>("v1/status", cancellationToken);

    public Task<IReadOnlyList<PeerInfo>> ListPeersAsync(string? state, CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<PeerInfo>>(state is null ? "v1/peers" : $"v1/peers?state={Uri.EscapeDataString(state)}", cancellationToken);

    public Task<PeerInfo> AddPeerAsync(AddPeerRequest request, CancellationToken cancellationToken) => SendAsync<PeerInfo>(HttpMethod.Post, "v1/peers", request, cancellationToken);

    public Task<PeerActionResult> TrustPeerAsync(string peerId, CancellationToken cancellationToken) =>
        SendAsync<PeerActionResult>(HttpMethod.Post, $"v1/peers/{Escape(peerId)}/trust", null, cancellationToken);

    public Task<PeerActionResult> BlockPeerAsync(string peerId, string? reason, CancellationToken cancellationToken) =>
        SendAsync<PeerActionResult>(HttpMethod.Post, $"v1/peers/{Escape(peerId)}/block", new BlockRequest(null, reason), cancellationToken);

    public Task<PeerActionResult> UnblockPeerAsync(string peerId, CancellationToken cancellationToken) =>
        SendAsync<PeerActionResult>(HttpMethod.Post, $"v1/peers/{Escape(peerId)}/unblock", null, cancellationToken);

    public Task<PeerActionResult> RenamePeerAsync(string peerId, string name, CancellationToken cancellationToken) =>
        SendAsync<PeerActionResult>(HttpMethod.Post, $"v1/peers/{Escape(peerId)}/rename", new RenameRequest(name), cancellationToken);

    public Task<PeerActionResult> RemovePeerAsync(string peerId, CancellationToken cancellationToken) =>
        SendAsync<PeerActionResult>(HttpMethod.Delete, $"v1/peers/{Escape(peerId)}", null, cancellationToken);

    public Task<PingResult> PingAsync(string address, int count, CancellationToken cancellationToken) =>
        SendAsync<PingResult>(HttpMethod.Post, "v1/ping", new PingRequest(address, count), cancellationToken, TimeSpan.FromSeconds(30 + count));

    public Task<ConnectionInfo> ConnectPeerAsync(string peerId, CancellationToken cancellationToken) =>
        SendAsync<ConnectionInfo>(HttpMethod.Post, $"v1/peers/{Escape(peerId)}/connect", null, cancellationToken, TimeSpan.FromSeconds(60));

    public Task<IReadOnlyList<DiscoveredPeerInfo>> ListDiscoveredAsync(CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<DiscoveredPeerInfo>>("v1/discovered", cancellationToken);

    public Task<BlocklistInfo> GetBlocklistAsync(CancellationToken cancellationToken) => GetAsync<BlocklistInfo>("v1/blocklist", cancellationToken);

    public Task<BlockedContentInfo> BlockContentAsync(string contentId, string? reason, CancellationToken cancellationToken) =>
        SendAsync<BlockedContentInfo>(HttpMethod.Post, "v1/blocklist/content", new BlockRequest(contentId, reason), cancellationToken);

    public Task UnblockContentAsync(string contentId, CancellationToken cancellationToken) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/blocklist/content?id={Uri.EscapeDataString(contentId)}", null, cancellationToken);

    public Task<BlockedAddressInfo> BlockAddressAsync(string cidr, string? reason, CancellationToken cancellationToken) =>
        SendAsync<BlockedAddressInfo>(HttpMethod.Post, "v1/blocklist/addr", new BlockRequest(cidr, reason), cancellationToken);

    public Task UnblockAddressAsync(string cidr, CancellationToken cancellationToken) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/blocklist/addr?cidr={Uri.EscapeDataString(cidr)}", null, cancellationToken);

    public Task<IReadOnlyList<SettingInfo>> ListConfigAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<SettingInfo>>("v1/config", cancellationToken);

    public Task<ConfigValue> GetConfigAsync(string key, CancellationToken cancellationToken) => GetAsync<ConfigValue>($"v1/config/{Escape(key)}", cancellationToken);

    public Task<ConfigSetResult> SetConfigAsync(string key, string value, CancellationToken cancellationToken) =>
        SendAsync<ConfigSetResult>(HttpMethod.Put, $"v1/config/{Escape(key)}", new ConfigSetRequest(value), cancellationToken);

    public Task<IReadOnlyList<LogEntryInfo>> GetLogAsync(DateTimeOffset? since, int? limit, CancellationToken cancellationToken)
    {
        var query = new List<string>();
        if (since is { } s)
        {
            query.Add($"since={Uri.EscapeDataString(s.ToString("O", System.Globalization.CultureInfo.InvariantCulture))}");
        }
        if (limit is { } l)
        {
            query.Add($"limit={l.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }
        return GetAsync<IReadOnlyList<LogEntryInfo>>(query.Count == 0 ? "v1/log" : $"v1/log?{string.Join('&', query)}", cancellationToken);
    }

    public Task<LogVerification> VerifyLogAsync(CancellationToken cancellationToken) => GetAsync<LogVerification>("v1/log/verify", cancellationToken);

    public Task<IReadOnlyList<ShareInfo>> ListSharesAsync(CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<ShareInfo>>("v1/shares", cancellationToken);

    // Indexing a large folder takes as long as hashing it.
    public Task<ShareAddInfo> AddShareAsync(string path, string? with, bool includeHidden, CancellationToken cancellationToken) =>
        SendAsync<ShareAddInfo>(HttpMethod.Post, "v1/shares", new ShareRequest(path, with, includeHidden), cancellationToken, TimeSpan.FromHours(6));

    public Task<IReadOnlyList<GroupInfo>> ListGroupsAsync(CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<GroupInfo>>("v1/groups", cancellationToken);

    public Task<GroupInfo> CreateGroupAsync(string name, CancellationToken cancellationToken) =>
        SendAsync<GroupInfo>(HttpMethod.Post, "v1/groups", new GroupCreateRequest(name), cancellationToken);

    public Task DeleteGroupAsync(string name, CancellationToken cancellationToken) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/groups/{Escape(name)}", null, cancellationToken);

    public Task<GroupMembersResult> AddGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken) =>
        SendAsync<GroupMembersResult>(HttpMethod.Post, $"v1/groups/{Escape(name)}/members", new GroupMembersRequest(peerIds), cancellationToken);

    public Task<GroupMembersResult> RemoveGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken) =>
        SendAsync<GroupMembersResult>(HttpMethod.Post, $"v1/groups/{Escape(name)}/members/remove", new GroupMembersRequest(peerIds), cancellationToken);

    public Task<ShareAudienceInfo> SetShareAudienceAsync(string path, string with, CancellationToken cancellationToken) =>
        SendAsync<ShareAudienceInfo>(HttpMethod.Put, "v1/shares/audience", new ShareAudienceRequest(path, with), cancellationToken);

    public Task RemoveShareAsync(string path, CancellationToken cancellationToken) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/shares?path={Uri.EscapeDataString(path)}", null, cancellationToken);

    public Task<IReadOnlyList<SearchHitInfo>> SearchAsync(string terms, CancellationToken cancellationToken) =>
        SendAsync<IReadOnlyList<SearchHitInfo>>(HttpMethod.Get, $"v1/search?q={Uri.EscapeDataString(terms)}", null, cancellationToken, TimeSpan.FromSeconds(30));

    public Task<DownloadInfo> StartDownloadAsync(string contentId, string? outDir, CancellationToken cancellationToken) =>
        SendAsync<DownloadInfo>(HttpMethod.Post, "v1/downloads", new DownloadRequest(contentId, outDir), cancellationToken);

    public Task<IReadOnlyList<DownloadInfo>> ListDownloadsAsync(CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<DownloadInfo>>("v1/downloads", cancellationToken);

    public Task<DownloadInfo> GetDownloadAsync(string contentId, CancellationToken cancellationToken) =>
        GetAsync<DownloadInfo>($"v1/downloads/{Escape(contentId)}", cancellationToken);

    /// <summary>The download's state once it has ended or <paramref name="upTo"/> has passed (the node waits; at most 5 s).</summary>
    public Task<DownloadInfo> WaitDownloadAsync(string contentId, TimeSpan upTo, CancellationToken cancellationToken) =>
        GetAsync<DownloadInfo>(string.Create(CultureInfo.InvariantCulture, $"v1/downloads/{Escape(contentId)}?waitMs={(int)upTo.TotalMilliseconds}"), cancellationToken);

    public Task CancelDownloadAsync(string contentId, CancellationToken cancellationToken) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/downloads/{Escape(contentId)}", null, cancellationToken);

    public Task<IReadOnlyList<QuarantineInfo>> ListQuarantineAsync(CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<QuarantineInfo>>("v1/quarantine", cancellationToken);

    public Task<QuarantineInfo> ReleaseQuarantineAsync(long id, string? toDirectory, CancellationToken cancellationToken) =>
        SendAsync<QuarantineInfo>(HttpMethod.Post, $"v1/quarantine/{id.ToString(System.Globalization.CultureInfo.InvariantCulture)}/release", new ReleaseRequest(toDirectory), cancellationToken, TimeSpan.FromMinutes(10));

    public Task DeleteQuarantineAsync(long id, CancellationToken cancellationToken) =>
        SendAsync<object>(HttpMethod.Delete, $"v1/quarantine/{id.ToString(System.Globalization.CultureInfo.InvariantCulture)}", null, cancellationToken);

    private Task<T> GetAsync<T>(string path, CancellationToken cancellationToken) => SendAsync<T>(HttpMethod.Get, path, null, cancellationToken);

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout ?? _timeout);
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, NodeControl.Json.GetTypeInfo(body.GetType()));
        }
        try
        {
            using var response = await _http.SendAsync(request, deadline.Token);
            if (!response.IsSuccessStatusCode)
            {
                throw await ToErrorAsync(response, deadline.Token);
            }
            if (response.StatusCode == HttpStatusCode.NoContent || typeof(T) == typeof(object))
            {
                return default!;
            }
            return await response.Content.ReadFromJsonAsync(TypeInfo<T>(), deadline.Token)
                ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the node at {_home} sent an empty answer");
        }
        catch (HttpRequestException e)
        {
            throw NotAnswering(e.InnerException?.Message ?? e.Message, e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw NotAnswering("timed out", e);
        }
        catch (JsonException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the node at {_home} sent an unreadable answer: {e.Message}", e);
        }
    }

    /// <summary>The contract's source-generated JSON for <typeparamref name="T"/> (no reflection: trim and AOT safe).</summary>
    private static JsonTypeInfo<T> TypeInfo<T>() => (JsonTypeInfo<T>)NodeControl.Json.GetTypeInfo(typeof(T));

    private SecureMeshException NotAnswering(string reason, Exception inner) =>
        new(SecureMeshErrorKind.Network, $"the node at {_home} is not answering ({reason}); is it still running?", inner);

    private async Task<SecureMeshException> ToErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        ErrorInfo? error = null;
        try
        {
            error = await response.Content.ReadFromJsonAsync(TypeInfo<ErrorInfo>(), cancellationToken);
        }
        catch (JsonException)
        {
        }
        var kind = error is not null && Enum.TryParse<SecureMeshErrorKind>(error.Kind, ignoreCase: true, out var k) ? k : SecureMeshErrorKind.Network;
        return new SecureMeshException(kind, error?.Error ?? $"the node at {_home} answered {(int)response.StatusCode} {response.ReasonPhrase}");
    }

    private static string Escape(string segment) => Uri.EscapeDataString(segment ?? string.Empty);

    public void Dispose() => _http.Dispose();
}
