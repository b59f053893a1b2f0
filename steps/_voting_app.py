"""The seed's voting app (storage, app, analytics) as one manifest, with two changes: the app Service
is an internal LoadBalancer pinned to the DNAT target (the seed's public one breaks by asymmetric
routing behind the UDR), and the secret's passwords come from the caller (generated per deploy)."""

from __future__ import annotations

import base64

SERVICE = "voting-app"
INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"
PINNED_IP = "service.beta.kubernetes.io/azure-load-balancer-ipv4"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def voting_app_manifest(
    ip: str, port: int, password: str, root_password: str, *, with_secret: bool = True
) -> str:
    """The seed's voting app (storage, app, analytics), with the app Service made an internal
    LoadBalancer pinned to ``ip`` and the secret's passwords supplied by the caller.

    ``with_secret=False`` leaves the Secret out: re-applying must not rotate a password MySQL has
    already stored in its volume (kubectl apply without --prune leaves the existing Secret alone)."""
    text = _manifest(ip, port, password, root_password)
    if with_secret:
        return text
    return "---\n".join(doc for doc in text.split("---\n") if "\nkind: Secret\n" not in doc)


def _manifest(ip: str, port: int, password: str, root_password: str) -> str:
    env = "\n".join(
        f"""        - name: {key}
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: {key}"""
        for key in ("MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DATABASE")
    )
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: voting-storage
spec:
  replicas: 1
  selector:
    matchLabels:
      app: voting-storage
  template:
    metadata:
      labels:
        app: voting-storage
    spec:
      containers:
      - name: voting-storage
        image: mcr.microsoft.com/aks/samples/voting/storage:2.0
        args: ["--ignore-db-dir=lost+found"]
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            cpu: 250m
            memory: 256Mi
        ports:
        - containerPort: 3306
          name: mysql
        volumeMounts:
        - name: mysql-persistent-storage
          mountPath: /var/lib/mysql
        env:
        - name: MYSQL_ROOT_PASSWORD
          valueFrom:
            secretKeyRef:
              name: voting-storage-secret
              key: MYSQL_ROOT_PASSWORD
{env}
      volumes:
      - name: mysql-persistent-storage
        persistentVolumeClaim:
          claimName: mysql-pv-claim
---
apiVersion: v1
kind: Secret
metadata:
  name: voting-storage-secret
type: Opaque
data:
  MYSQL_USER: {_b64("dbuser")}
  MYSQL_PASSWORD: {_b64(password)}
  MYSQL_DATABASE: {_b64("azurevote")}
  MYSQL_ROOT_PASSWORD: {_b64(root_password)}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: mysql-pv-claim
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Service
metadata:
  name: voting-storage
  labels:
    app: voting-storage
spec:
  ports:
  - port: 3306
    name: mysql
  selector:
    app: voting-storage
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: voting-app
spec:
  replicas: 1
  selector:
    matchLabels:
      app: voting-app
  template:
    metadata:
      labels:
        app: voting-app
    spec:
      containers:
      - name: voting-app
        image: mcr.microsoft.com/aks/samples/voting/app:2.0
        imagePullPolicy: Always
        ports:
        - containerPort: 8080
          name: http
        env:
        - name: MYSQL_HOST
          value: "voting-storage"
{env}
        - name: ANALYTICS_HOST
          value: "voting-analytics"
---
apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
  labels:
    app: voting-app
  annotations:
    {INTERNAL_LB}: "true"
    {PINNED_IP}: "{ip}"
spec:
  type: LoadBalancer
  ports:
  - port: {port}
    targetPort: 8080
    name: http
  selector:
    app: voting-app
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: voting-analytics
spec:
  replicas: 1
  selector:
    matchLabels:
      app: voting-analytics
      version: "2.0"
  template:
    metadata:
      labels:
        app: voting-analytics
        version: "2.0"
    spec:
      containers:
      - name: voting-analytics
        image: mcr.microsoft.com/aks/samples/voting/analytics:2.0
        imagePullPolicy: Always
        ports:
        - containerPort: 8080
          name: http
        env:
        - name: MYSQL_HOST
          value: "voting-storage"
{env}
---
apiVersion: v1
kind: Service
metadata:
  name: voting-analytics
  labels:
    app: voting-analytics
spec:
  ports:
  - port: 8080
    name: http
  selector:
    app: voting-analytics
"""
